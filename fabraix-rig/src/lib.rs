//! [Fabraix](https://fabraix.com) for [rig](https://rig.rs) agents: one hook, and every
//! model call of the agent is logged and every tool call checked before it runs.
//!
//! ```no_run
//! use fabraix_rig::FabraixHook;
//! use rig_agent::AgentBuilder;
//! use rig_core::providers::openai::{OpenAIConfig, Route};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let model = OpenAIConfig::from_env()?
//!     .with_route(Route::Chat)
//!     .client()
//!     .completion("gpt-4o-mini");
//! let agent = AgentBuilder::new(model)
//!     .name("notes-tidier")
//!     .preamble("You tidy the user's notes.")
//!     .add_hook(FabraixHook::global())
//!     .build();
//! let answer = agent.prompt("Tidy my notes.").await?;
//! println!("{}", answer.output());
//! # Ok(()) }
//! ```
//!
//! [`FabraixHook`] is a `rig_agent::AgentHook`. Attached to an agent (or to one run with
//! `AgentRunner::add_hook`), it:
//!
//! - reports each rig run to a Fabraix run: the run of the `#[fabraix::agent]` fn the rig
//!   run was started in, else a run it registers itself at the first model request, with
//!   the agent's preamble as the system prompt;
//! - logs each model request as a `model_input` event and each answer as a
//!   `model_output` event; a streamed answer is logged whole once its stream ends, tool
//!   calls included, and one that breaks off is logged with what had arrived;
//! - checks each tool call with Fabraix before it runs (the tool's name, the description
//!   and JSON Schema of its definition, the model's arguments): a blocked call is skipped
//!   and the model reads Fabraix's reasoning as the tool's result; a call Fabraix gives no
//!   verdict on does not run either (checks fail closed, see [`NoVerdict`]), unless the
//!   SDK is disabled (below);
//! - logs each tool result as a `tool` event, and a failed rig run as an `error` event.
//!
//! Every event carries a JSON Schema describing its content.
//!
//! # Disabled means off
//!
//! With the SDK disabled (`FABRAIX_DISABLED=1`, or a client built with
//! `ClientBuilder::disabled(true)`) the user has turned checking off on purpose: every
//! tool call runs, **unchecked**, and the model gets the tools' real results; the first
//! such call of the process logs one `tracing` warning saying so. Nothing is sent: no run
//! is registered, no check asked, and the events are let go (counted as `untraced` on the
//! client). This holds for a rig run inside a `#[fabraix::agent]` fn of a disabled SDK too.
//! Only this switch lets a tool run without a verdict: a missing key, a failed
//! registration (the message names its cause) or an unreachable Fabraix still refuse.
//!
//! # Versions
//!
//! This crate supports `rig-core` and `rig-agent` 0.44 (rig's hook API changes between
//! minor versions), which need Rust 1.95.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod disabled;
mod hook;
mod record;
mod run;
mod settings;
mod stream;

pub use hook::FabraixHook;
pub use settings::{DEFAULT_AGENT_ID, DEFAULT_FLUSH_TIMEOUT, NoVerdict};
