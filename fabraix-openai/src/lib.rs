//! [Fabraix](https://fabraix.com) for agent loops written by hand on
//! [`async-openai`](https://docs.rs/async-openai): every chat completion logged, every tool
//! call checked before it runs.
//!
//! - [`Chat`] wraps async-openai's chat API once (`client.chat().fabraix()`). Each chat
//!   completion, plain or streamed, logs its request as a `model_input` event and its answer
//!   as a `model_output` event in the current agent run. A streamed answer reaches the
//!   caller chunk by chunk, unchanged, and is logged once, whole (text, every tool call with
//!   its full arguments, finish reason, usage), when the stream ends; a stream dropped early
//!   logs what arrived, marked cut short. See [`ChatStream`].
//! - [`check_tool_calls`] asks Fabraix about each tool call of an answer, with the tool's
//!   declared JSON schema and the model's arguments, and sorts them into the calls that may
//!   run and the refused ones, each with a tool message telling the model why. It fails
//!   closed, unless the SDK is disabled (below).
//!
//! Inside a `#[fabraix::agent]` fn the run is current and everything goes to it; the run is
//! captured when a call is made, so a stream that async-openai parses on a task of its own,
//! or that the caller reads on another task, stays in it. Outside agent fns, give the run
//! explicitly: [`Chat::in_trace`] and [`check_tool_calls_in`].
//!
//! # A hand-written agent loop
//!
//! ```no_run
//! use async_openai::config::OpenAIConfig;
//! use async_openai::types::chat::{
//!     ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
//!     ChatCompletionRequestToolMessage, ChatCompletionRequestUserMessage, ChatCompletionTools,
//!     CreateChatCompletionRequestArgs,
//! };
//! use fabraix_openai::ChatExt;
//!
//! #[fabraix::agent(id = "notes-agent", system_prompt = "You manage the user's notes.")]
//! async fn agent(
//!     openai: &async_openai::Client<OpenAIConfig>,
//!     tools: Vec<ChatCompletionTools>,
//!     task: &str,
//! ) -> Result<Option<String>, Box<dyn std::error::Error>> {
//!     let chat = openai.chat().fabraix();
//!     let mut messages: Vec<ChatCompletionRequestMessage> =
//!         vec![ChatCompletionRequestUserMessage::from(task).into()];
//!     loop {
//!         let request = CreateChatCompletionRequestArgs::default()
//!             .model("gpt-4o-mini")
//!             .messages(messages.clone())
//!             .tools(tools.clone())
//!             .build()?;
//!         let response = chat.create(request).await?; // model_input, model_output logged
//!         let message = &response.choices[0].message;
//!         let Some(calls) = message.tool_calls.clone() else {
//!             return Ok(message.content.clone());
//!         };
//!         messages.push(
//!             ChatCompletionRequestAssistantMessageArgs::default()
//!                 .tool_calls(calls.clone())
//!                 .build()?
//!                 .into(),
//!         );
//!         let checked = fabraix_openai::check_tool_calls(&tools, &calls).await;
//!         for call in &checked.allowed {
//!             let result = format!("ran {} with {}", call.name, call.arguments); // run the tool
//!             messages.push(
//!                 ChatCompletionRequestToolMessage {
//!                     content: result.into(),
//!                     tool_call_id: call.id.clone(),
//!                 }
//!                 .into(),
//!             );
//!         }
//!         messages.extend(checked.refusal_messages()); // why the others did not run
//!     }
//! }
//! ```
//!
//! Streaming is the same with [`Chat::create_stream`]: read the chunks as they come, then
//! take [`ChatStream::completion`], which has the shape of a plain answer. The crate's
//! `examples/openai_agent.rs` is this loop with two tools, plain and streamed, runnable
//! offline.
//!
//! # Disabled means off
//!
//! With the SDK disabled (`FABRAIX_DISABLED=1`, or a client built with
//! `ClientBuilder::disabled(true)`) the user has turned checking off on purpose:
//! [`check_tool_calls`] allows every declared call with object arguments, unchecked, its
//! [`AllowedToolCall::verdict`] `None` (no verdict is made up), and the first such call of
//! the process logs one `tracing` warning. Nothing is sent, and the events of model calls
//! are let go. Only this switch allows a call without a verdict: outside a run, in a run
//! that could not be registered, or with Fabraix unreachable, calls are still refused.
//!
//! # What is logged
//!
//! - `model_input`: the request, as async-openai sends it (JSON).
//! - `model_output`: the answer as OpenAI's chat completion object (for a stream, assembled
//!   from its chunks), plus `streamed`, `cut_short` (the stream was dropped before its end,
//!   or met an error) and, when there were any, `stream_errors`.
//! - `error`: the model call failed, and why (instead of `model_output`).
//!
//! Logging only queues the events for Fabraix's background exporter: it never waits on the
//! network and never fails a model call (a full queue or a missing run is reported through
//! `tracing`).
#![warn(missing_docs)]

mod assemble;
mod chat;
mod events;
mod recorder;
mod stream;
mod tool_calls;

pub use chat::{Chat, ChatExt};
pub use stream::ChatStream;
pub use tool_calls::{
    AllowedToolCall, CheckedToolCalls, Refusal, RefusedToolCall, check_tool_calls,
    check_tool_calls_in,
};
