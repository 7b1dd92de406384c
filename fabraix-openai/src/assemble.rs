//! Streamed chunks put back together into one chat completion.
//!
//! A streamed answer arrives as deltas: text in pieces, and tool calls whose id and name
//! come first and whose arguments follow in fragments, interleaved across calls and told
//! apart only by their `index`. The last chunk may carry nothing but the usage.

use std::collections::BTreeMap;

use async_openai::types::chat::{
    ChatChoice, ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionResponseMessage, CompletionUsage, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason, FunctionCall, Role, ServiceTier,
};

/// Everything a stream has said so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assembler {
    id: String,
    created: u32,
    model: String,
    service_tier: Option<ServiceTier>,
    system_fingerprint: Option<String>,
    choices: BTreeMap<u32, ChoiceParts>,
    usage: Option<CompletionUsage>,
}

#[derive(Clone, Debug, Default)]
struct ChoiceParts {
    role: Option<Role>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, ToolCallParts>,
    finish_reason: Option<FinishReason>,
}

#[derive(Clone, Debug, Default)]
struct ToolCallParts {
    id: String,
    name: String,
    arguments: String,
}

impl Assembler {
    /// Adds one chunk.
    #[allow(deprecated)] // `system_fingerprint` is deprecated, yet still sent.
    pub(crate) fn add(&mut self, chunk: &CreateChatCompletionStreamResponse) {
        set_once(&mut self.id, &chunk.id);
        set_once(&mut self.model, &chunk.model);
        if self.created == 0 {
            self.created = chunk.created;
        }
        if chunk.service_tier.is_some() {
            self.service_tier = chunk.service_tier.clone();
        }
        if chunk.system_fingerprint.is_some() {
            self.system_fingerprint = chunk.system_fingerprint.clone();
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage.clone();
        }
        for choice in &chunk.choices {
            let parts = self.choices.entry(choice.index).or_default();
            let delta = &choice.delta;
            if delta.role.is_some() {
                parts.role = delta.role;
            }
            append(&mut parts.content, delta.content.as_deref());
            append(&mut parts.refusal, delta.refusal.as_deref());
            for call in delta.tool_calls.iter().flatten() {
                let slot = parts.tool_calls.entry(call.index).or_default();
                // Ids are sent whole (some servers repeat them on every fragment).
                if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty()) {
                    id.clone_into(&mut slot.id);
                }
                if let Some(function) = &call.function {
                    // A name is sent whole too; a server that repeats it must not double it.
                    if let Some(name) = function.name.as_deref().filter(|name| slot.name != *name) {
                        slot.name.push_str(name);
                    }
                    if let Some(arguments) = function.arguments.as_deref() {
                        slot.arguments.push_str(arguments);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                parts.finish_reason = choice.finish_reason;
            }
        }
    }

    /// The chat completion the chunks so far add up to.
    #[allow(deprecated)] // `system_fingerprint` and `function_call` are deprecated fields.
    pub(crate) fn completion(&self) -> CreateChatCompletionResponse {
        let choices = self
            .choices
            .iter()
            .map(|(&index, parts)| {
                let tool_calls: Vec<ChatCompletionMessageToolCalls> = parts
                    .tool_calls
                    .values()
                    .map(|call| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: call.id.clone(),
                            function: FunctionCall {
                                name: call.name.clone(),
                                arguments: call.arguments.clone(),
                            },
                        })
                    })
                    .collect();
                ChatChoice {
                    index,
                    message: ChatCompletionResponseMessage {
                        content: parts.content.clone(),
                        refusal: parts.refusal.clone(),
                        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                        role: parts.role.unwrap_or(Role::Assistant),
                        ..Default::default()
                    },
                    finish_reason: parts.finish_reason,
                    logprobs: None,
                }
            })
            .collect();
        CreateChatCompletionResponse {
            id: self.id.clone(),
            choices,
            created: self.created,
            model: self.model.clone(),
            service_tier: self.service_tier.clone(),
            system_fingerprint: self.system_fingerprint.clone(),
            object: "chat.completion".to_owned(),
            usage: self.usage.clone(),
            metadata: None,
            moderation: None,
        }
    }
}

fn set_once(field: &mut String, value: &str) {
    if field.is_empty() {
        value.clone_into(field);
    }
}

fn append(field: &mut Option<String>, piece: Option<&str>) {
    if let Some(piece) = piece {
        field.get_or_insert_with(String::new).push_str(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk(value: serde_json::Value) -> CreateChatCompletionStreamResponse {
        let mut value = value;
        let object = value.as_object_mut().unwrap();
        object.entry("id").or_insert(json!("chatcmpl-1"));
        object.entry("created").or_insert(json!(1_700_000_000));
        object.entry("model").or_insert(json!("stand-in"));
        object
            .entry("object")
            .or_insert(json!("chat.completion.chunk"));
        serde_json::from_value(value).unwrap()
    }

    fn tool_calls(completion: &CreateChatCompletionResponse) -> Vec<(String, String, String)> {
        completion.choices[0]
            .message
            .tool_calls
            .iter()
            .flatten()
            .map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => (
                    call.id.clone(),
                    call.function.name.clone(),
                    call.function.arguments.clone(),
                ),
                ChatCompletionMessageToolCalls::Custom(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn interleaved_tool_call_fragments_are_joined_by_index() {
        let mut assembler = Assembler::default();
        for value in [
            json!({"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me "}}]}),
            json!({"choices":[{"index":0,"delta":{"content":"check."}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[
                {"index":0,"id":"call_a","type":"function","function":{"name":"read_note","arguments":""}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[
                {"index":1,"id":"call_b","type":"function","function":{"name":"delete_note","arguments":"{\"na"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"name\":"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"me\":\"x\"}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"y\"}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
            json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}),
        ] {
            assembler.add(&chunk(value));
        }
        let completion = assembler.completion();
        assert_eq!(completion.id, "chatcmpl-1");
        assert_eq!(completion.object, "chat.completion");
        let message = &completion.choices[0].message;
        assert_eq!(message.role, Role::Assistant);
        assert_eq!(message.content.as_deref(), Some("Let me check."));
        assert_eq!(
            tool_calls(&completion),
            vec![
                (
                    "call_a".into(),
                    "read_note".into(),
                    r#"{"name":"y"}"#.into()
                ),
                (
                    "call_b".into(),
                    "delete_note".into(),
                    r#"{"name":"x"}"#.into()
                ),
            ]
        );
        assert_eq!(
            completion.choices[0].finish_reason,
            Some(FinishReason::ToolCalls)
        );
        assert_eq!(completion.usage.unwrap().total_tokens, 8);
    }

    #[test]
    fn repeated_ids_and_names_are_not_doubled() {
        let mut assembler = Assembler::default();
        for arguments in ["{\"name\"", ":\"x\"}"] {
            assembler.add(&chunk(json!({"choices":[{"index":0,"delta":{"tool_calls":[
                {"index":0,"id":"call_a","function":{"name":"read_note","arguments":arguments}}]}}]})));
        }
        assert_eq!(
            tool_calls(&assembler.completion()),
            vec![(
                "call_a".into(),
                "read_note".into(),
                r#"{"name":"x"}"#.into()
            )]
        );
    }

    #[test]
    fn choices_are_kept_apart_and_nothing_is_invented() {
        let mut assembler = Assembler::default();
        assembler.add(&chunk(json!({"choices":[
            {"index":1,"delta":{"content":"second"}},
            {"index":0,"delta":{"refusal":"no"}}]})));
        let completion = assembler.completion();
        assert_eq!(completion.choices.len(), 2);
        assert_eq!(completion.choices[0].message.refusal.as_deref(), Some("no"));
        assert_eq!(completion.choices[0].message.content, None);
        assert_eq!(
            completion.choices[1].message.content.as_deref(),
            Some("second")
        );
        assert!(completion.choices[1].message.tool_calls.is_none());
        assert_eq!(completion.choices[1].finish_reason, None);
        assert!(completion.usage.is_none());
    }
}
