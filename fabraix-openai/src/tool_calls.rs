//! Checking an answer's tool calls with Fabraix before the loop runs them.

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionTools,
};
use fabraix::__private::{NotRun, refusal};
use fabraix::{Action, Client, TraceId, Verdict};
use serde_json::{Map, Value, json};

use crate::recorder::Recorder;

/// How this crate is named in what Fabraix's guards log.
const GUARD: &str = "fabraix-openai";

/// The tool calls of one answer, sorted into those that may run and those that may not.
/// Each list keeps the order the model gave.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckedToolCalls {
    /// Calls that may run: Fabraix approved them, or the SDK is disabled. Run these.
    pub allowed: Vec<AllowedToolCall>,
    /// Calls that must not run, each with the tool message to send the model instead.
    pub refused: Vec<RefusedToolCall>,
}

/// A tool call that may run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AllowedToolCall {
    /// The call's id, for the tool message that answers it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments exactly as checked: the JSON object the model sent (for a custom
    /// tool, `{"input": "<its free-form input>"}`). Run the tool with these.
    pub arguments: Value,
    /// Fabraix's verdict. `None`: the call was not checked, because Fabraix is disabled
    /// (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`); no verdict is made up.
    pub verdict: Option<Verdict>,
}

/// A tool call that must not run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RefusedToolCall {
    /// The call's id.
    pub id: String,
    /// The tool's name, as the model sent it.
    pub name: String,
    /// Why it was refused.
    pub refusal: Refusal,
    /// A tool message answering the call (its `tool_call_id` is the call's id) that tells
    /// the model the call did not run, and why. Send it in place of the tool's result.
    pub message: ChatCompletionRequestToolMessage,
}

/// Why a tool call was refused.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// Fabraix judged the call unsafe.
    Blocked {
        /// Fabraix's reasoning.
        reasoning: String,
        /// The id of the check.
        action_check_id: String,
    },
    /// No verdict could be had (no agent run, a run that could not be registered, Fabraix
    /// unreachable, a malformed answer, a tool schema Fabraix cannot take), so the call
    /// fails closed. Never [`fabraix::Error::Disabled`]: a disabled SDK's calls are allowed.
    Unchecked(fabraix::Error),
    /// The arguments are not a JSON object; they were never sent for a check.
    InvalidArguments(String),
    /// The request's `tools` declare no tool of this name (and kind); the model invented it.
    UnknownTool,
}

impl CheckedToolCalls {
    /// Whether every call may run.
    pub fn all_allowed(&self) -> bool {
        self.refused.is_empty()
    }

    /// The refusals' tool messages, ready to append to the conversation.
    pub fn refusal_messages(&self) -> impl Iterator<Item = ChatCompletionRequestMessage> + '_ {
        self.refused
            .iter()
            .map(|refused| ChatCompletionRequestMessage::Tool(refused.message.clone()))
    }
}

/// Checks each of `calls` (an answer's `message.tool_calls`) with Fabraix in the current
/// agent run, before any of them runs; `tools` are the request's declared tools
/// (`request.tools`), whose JSON schemas go with the checks.
///
/// Each call is sent to `POST /check` as an action: the tool's name and description, its
/// declared `parameters` schema, and the arguments the model sent, parsed as JSON. The
/// checks run concurrently. A call is allowed on an approving verdict; it is refused when
/// Fabraix blocks it, when no verdict can be had (outside a run, in a run that could not
/// be registered, Fabraix unreachable: fail closed), when its arguments are not a JSON
/// object (empty arguments count as `{}`), or when it names a tool the request did not
/// declare.
///
/// With the SDK disabled (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`) checking
/// is off: a declared call with object arguments is allowed unchecked, its
/// [`verdict`](AllowedToolCall::verdict) `None`, nothing is sent, and the first such call
/// of the process logs one `tracing` warning.
///
/// ```no_run
/// # async fn demo(
/// #     request: async_openai::types::chat::CreateChatCompletionRequest,
/// #     response: async_openai::types::chat::CreateChatCompletionResponse,
/// #     messages: &mut Vec<async_openai::types::chat::ChatCompletionRequestMessage>,
/// # ) {
/// let tools = request.tools.as_deref().unwrap_or_default();
/// let calls = response.choices[0].message.tool_calls.as_deref().unwrap_or_default();
/// let checked = fabraix_openai::check_tool_calls(tools, calls).await;
/// for call in &checked.allowed {
///     // run the tool `call.name` with `call.arguments`, answer `call.id` with its result
/// }
/// messages.extend(checked.refusal_messages()); // the model learns why the others did not run
/// # }
/// ```
pub async fn check_tool_calls(
    tools: &[ChatCompletionTools],
    calls: &[ChatCompletionMessageToolCalls],
) -> CheckedToolCalls {
    check_with(&Recorder::current(), tools, calls).await
}

/// [`check_tool_calls`] in the run `trace_id`, through `client`, wherever it is called:
/// for agents that register their runs themselves.
pub async fn check_tool_calls_in(
    client: &Client,
    trace_id: TraceId,
    tools: &[ChatCompletionTools],
    calls: &[ChatCompletionMessageToolCalls],
) -> CheckedToolCalls {
    let recorder = Recorder::Trace {
        client: client.clone(),
        trace_id,
    };
    check_with(&recorder, tools, calls).await
}

async fn check_with(
    recorder: &Recorder,
    tools: &[ChatCompletionTools],
    calls: &[ChatCompletionMessageToolCalls],
) -> CheckedToolCalls {
    let decisions =
        futures_util::future::join_all(calls.iter().map(|call| decide(recorder, tools, call)))
            .await;
    let mut checked = CheckedToolCalls::default();
    for decision in decisions {
        match decision {
            Decision::Allowed(call) => checked.allowed.push(call),
            Decision::Refused(call) => checked.refused.push(call),
        }
    }
    checked
}

enum Decision {
    Allowed(AllowedToolCall),
    Refused(RefusedToolCall),
}

/// One call as the check sees it.
struct Call<'a> {
    id: &'a str,
    name: &'a str,
    arguments: Result<Value, String>,
}

impl<'a> Call<'a> {
    fn of(call: &'a ChatCompletionMessageToolCalls) -> Self {
        match call {
            ChatCompletionMessageToolCalls::Function(call) => Call {
                id: &call.id,
                name: &call.function.name,
                arguments: parse_arguments(&call.function.arguments),
            },
            ChatCompletionMessageToolCalls::Custom(call) => Call {
                id: &call.id,
                name: &call.custom_tool.name,
                arguments: Ok(json!({ "input": call.custom_tool.input })),
            },
        }
    }
}

fn parse_arguments(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the arguments are JSON, but not an object".to_owned()),
        Err(error) => Err(format!("the arguments are not valid JSON: {error}")),
    }
}

async fn decide(
    recorder: &Recorder,
    tools: &[ChatCompletionTools],
    call: &ChatCompletionMessageToolCalls,
) -> Decision {
    let parsed = Call::of(call);
    let refuse = |refusal: Refusal| {
        Decision::Refused(RefusedToolCall {
            id: parsed.id.to_owned(),
            name: parsed.name.to_owned(),
            message: tool_message(parsed.id, &refusal_text(parsed.name, &refusal)),
            refusal,
        })
    };
    let Some(declared) = declared_action(tools, call, parsed.name) else {
        return refuse(Refusal::UnknownTool);
    };
    let arguments = match &parsed.arguments {
        Ok(arguments) => arguments,
        Err(problem) => return refuse(Refusal::InvalidArguments(problem.clone())),
    };
    let allow = |verdict: Option<Verdict>| {
        Decision::Allowed(AllowedToolCall {
            id: parsed.id.to_owned(),
            name: parsed.name.to_owned(),
            arguments: arguments.clone(),
            verdict,
        })
    };
    match recorder.check(&declared.arguments(arguments)).await {
        Ok(verdict) if verdict.is_safe => allow(Some(verdict)),
        Ok(verdict) => refuse(Refusal::Blocked {
            reasoning: verdict.reasoning,
            action_check_id: verdict.action_check_id,
        }),
        // Not checked: allowed only when the SDK is disabled (`FABRAIX_DISABLED=1`,
        // `ClientBuilder::disabled(true)`), with no verdict.
        Err(error) => match fabraix::__private::unchecked_if_disabled(error, GUARD, parsed.name) {
            Ok(()) => allow(None),
            Err(error) => refuse(Refusal::Unchecked(error)),
        },
    }
}

/// The declared tool `call` names, as an action without arguments yet.
fn declared_action(
    tools: &[ChatCompletionTools],
    call: &ChatCompletionMessageToolCalls,
    name: &str,
) -> Option<Action> {
    tools.iter().find_map(|tool| match (tool, call) {
        (ChatCompletionTools::Function(tool), ChatCompletionMessageToolCalls::Function(_))
            if tool.function.name == name =>
        {
            let function = &tool.function;
            let parameters = function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            Some(with_description(
                Action::new(name).parameters(parameters),
                function.description.as_deref(),
            ))
        }
        (ChatCompletionTools::Custom(tool), ChatCompletionMessageToolCalls::Custom(_))
            if tool.custom.name == name =>
        {
            let parameters = json!({
                "type": "object",
                "properties": { "input": { "type": "string", "description": "the tool's free-form input" } },
                "required": ["input"],
            });
            Some(with_description(
                Action::new(name).parameters(parameters),
                tool.custom.description.as_deref(),
            ))
        }
        _ => None,
    })
}

fn with_description(action: Action, description: Option<&str>) -> Action {
    match description {
        Some(description) => action.description(description),
        None => action,
    }
}

/// What the model reads in place of the tool's result, in the words every Fabraix guard
/// uses.
fn refusal_text(name: &str, refused: &Refusal) -> String {
    let why = match refused {
        Refusal::Blocked { reasoning, .. } => NotRun::Blocked(reasoning),
        Refusal::Unchecked(error) => NotRun::Unchecked(error),
        Refusal::InvalidArguments(problem) => {
            let problem = format!("{problem}. Send the arguments as one JSON object.");
            return refusal(GUARD, name, NotRun::Refused(&problem));
        }
        Refusal::UnknownTool => NotRun::Refused("no tool of that name was offered."),
    };
    refusal(GUARD, name, why)
}

fn tool_message(id: &str, text: &str) -> ChatCompletionRequestToolMessage {
    ChatCompletionRequestToolMessage {
        content: ChatCompletionRequestToolMessageContent::Text(text.to_owned()),
        tool_call_id: id.to_owned(),
    }
}
