//! [Fabraix](https://fabraix.com) for MCP servers and clients built on
//! [rmcp](https://docs.rs/rmcp): every tool call checked before the tool runs, and one
//! agent run across the agent and its tool servers.
//!
//! # Guarding a server
//!
//! One line: wrap the server before serving it.
//!
//! ```no_run
//! use rmcp::{ServerHandler, ServiceExt, handler::server::wrapper::Parameters, schemars, tool, tool_handler, tool_router};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct NoteName {
//!     /// The note's name.
//!     name: String,
//! }
//!
//! #[derive(Clone)]
//! struct Notes;
//!
//! #[tool_router]
//! impl Notes {
//!     /// Delete a note.
//!     #[tool]
//!     async fn delete_note(&self, Parameters(note): Parameters<NoteName>) -> String {
//!         format!("deleted {}", note.name)
//!     }
//! }
//!
//! #[tool_handler]
//! impl ServerHandler for Notes {}
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let service = fabraix_mcp::guard(Notes)
//!     .serve(rmcp::transport::io::stdio())
//!     .await?;
//! service.waiting().await?;
//! # Ok(()) }
//! ```
//!
//! For every `tools/call` the [`Guarded`] server:
//!
//! - takes the run from the request's `_meta` (W3C `traceparent` and `baggage`, the format
//!   of [`fabraix::propagation`]); a call without one runs in a run the server registers
//!   for its MCP session, once, at the first such call (the agent id and system prompt are
//!   set with [`Guard`], and default to the server's name);
//! - asks Fabraix to check the action: the tool's name, its description, its
//!   `input_schema` as the parameters and the call's arguments ([`tool_action`]);
//! - runs the tool only if the verdict approves it, inside the run (so the tool's own
//!   [`fabraix::current_trace`], [`fabraix::log_event`] and `#[fabraix::action]` fns act
//!   for it), and logs its result as a `tool` event;
//! - otherwise answers a tool error result (`isError: true`) that the model can read:
//!   Fabraix's reasoning for a blocked call, or that the call could not be checked when
//!   no verdict could be had (Fabraix unreachable, an error answer, no run). Checks fail
//!   closed: the tool never runs unchecked, unless the SDK is disabled (below). Details
//!   for programs are in the result's `_meta`, under [`REFUSAL_META_KEY`].
//!
//! Checks go through the global client ([`fabraix::global_client`]: from the
//! environment, `FABRAIX_API_KEY` and `FABRAIX_BASE_URL`, unless [`fabraix::init`] set
//! one), or the one given to [`Guard::client`]; so do the tool bodies' own
//! `fabraix::log_event` and `fabraix::check_action`.
//!
//! # Disabled means off
//!
//! With the SDK disabled (`FABRAIX_DISABLED=1`, or a client built with
//! `ClientBuilder::disabled(true)`) the user has turned checking off on purpose: every
//! tool runs, **unchecked**, and the first such call of the process logs one `tracing`
//! warning saying so. Nothing is sent to Fabraix: no run is registered, no check asked,
//! no `tool` event logged. A call that carries a trace runs in it, one that carries none
//! in a run without a trace (as a disabled SDK's agent fns do), so the tool's own
//! `#[fabraix::action]` fns run unchecked too. Only this switch lets a tool run without a
//! verdict: a missing key, a bad base URL, a failed registration or an unreachable
//! Fabraix still refuse the call.
//!
//! # Calling a guarded server from an agent
//!
//! Inside the agent's run, write the run's trace into the call's `_meta`, and the tool
//! server acts for the same run: its checks, and its tools' events, arrive under the
//! agent's trace.
//!
//! ```no_run
//! # async fn demo(peer: rmcp::Peer<rmcp::RoleClient>) -> Result<(), Box<dyn std::error::Error>> {
//! use rmcp::model::CallToolRequestParams;
//!
//! #[fabraix::agent(id = "notes-assistant", system_prompt = "You keep the user's notes tidy.")]
//! async fn tidy(peer: &rmcp::Peer<rmcp::RoleClient>) -> Result<(), Box<dyn std::error::Error>> {
//!     let arguments = serde_json::json!({ "name": "old-draft" });
//!     let mut call = CallToolRequestParams::new("delete_note")
//!         .with_arguments(arguments.as_object().cloned().unwrap_or_default());
//!     fabraix_mcp::inject_current_trace(&mut call);
//!     let result = peer.call_tool(call).await?;
//!     if result.is_error == Some(true) {
//!         // blocked, or not checked: the text says why
//!     }
//!     Ok(())
//! }
//! tidy(&peer).await
//! # }
//! ```
//!
//! [`check_tool_call`] also checks the call in the agent's run before it is sent.
//!
//! # Trust
//!
//! A trace in `_meta` is the caller's claim. Fabraix accepts checks and events only for
//! runs of the organisation whose key the server uses, so a caller can at most act in a
//! run of that organisation that it knows the id of. [`Guard::trust`] accepts traces
//! only from the callers it approves of; the others' calls run in the server's own run.
//! Either way every call is checked: a caller's trace changes the run a call is checked
//! in, never whether it is.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod catalog;
mod check;
mod client;
mod disabled;
mod guard;
mod guarded;
mod meta;
mod refusal;
mod session;
mod tool_event;

pub use action::tool_action;
#[allow(deprecated)] // the old name, kept for those who use it
pub use client::check_call;
pub use client::check_tool_call;
pub use guard::Guard;
pub use guarded::{Guarded, guard};
pub use meta::{extract_trace, inject_current_trace, inject_trace};
pub use refusal::REFUSAL_META_KEY;
