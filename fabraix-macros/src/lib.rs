//! Procedural macros of the `fabraix` SDK: `#[fabraix::agent]` and `#[fabraix::action]`.
//!
//! Use them through the `fabraix` crate, which documents them. Each macro runs the same
//! pipeline: tokens → typed arguments (`attr.rs`) → every semantic check (`valid.rs`) →
//! code generation that cannot fail (`expand.rs`). On error the original item is emitted
//! with the error, so one mistake gives one message.
#![warn(missing_docs)]

mod action;
mod agent;
mod args;
mod codegen;
mod item;
mod lookalike;
mod spawn_lint;

use proc_macro::TokenStream;

/// The pipeline both attributes run: parse the arguments and the item, validate, expand.
/// On any error, the errors and the item as written, so one mistake gives one message and
/// the rest of the code still compiles and completes.
fn pipeline<A, V>(
    attribute: &str,
    args: proc_macro2::TokenStream,
    input: proc_macro2::TokenStream,
    parse_args: fn(proc_macro2::TokenStream) -> syn::Result<A>,
    check: fn(A, &item::FnItem) -> syn::Result<V>,
    expand: fn(&V, &item::FnItem) -> proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let parsed = match (parse_args(args), item::parse(input.clone(), attribute)) {
        (Ok(args), Ok(item)) => check(args, &item).map(|valid| expand(&valid, &item)),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    parsed.unwrap_or_else(|error| {
        let mut output = error.to_compile_error();
        output.extend(input);
        output
    })
}

/// Registers a Fabraix agent run each time the fn is called, and makes its trace current
/// for everything the fn calls; with `conversation = …`, each call is one turn of a
/// conversation, and the conversation's turns share one run.
///
/// ```rust,ignore
/// // One call is one task: one run per call.
/// #[fabraix::agent(id = "orders-bot", system_prompt = "You process orders.")]
/// async fn process(order: Order) -> Result<Receipt, MyError> {
///     let trace = fabraix::current_trace(); // Some(..): this call's run
///     // ...
/// }
///
/// // One call per user message: one run per conversation, continued turn after turn.
/// #[fabraix::agent(
///     id = "support-bot",
///     system_prompt = "You are a support assistant.",
///     conversation = &request.conversation_id,
/// )]
/// async fn chat(request: ChatRequest) -> Result<Reply, MyError> {
///     let trace = fabraix::current_trace(); // Some(..): the conversation's run
///     // ...
/// }
/// ```
///
/// # Arguments
///
/// - `id` (required): the agent's id, a string literal or an expression (`&str`, `String`,
///   `fabraix::AgentId`, `uuid::Uuid`). A UUID is used as is; any other name maps to a stable
///   UUID (`fabraix::AgentId::from_name`). An empty literal, or one that looks like a UUID
///   without being one (a digit short, a stray letter, `_` between the groups), is a
///   compile error.
/// - `system_prompt` (required): a literal or any `impl Into<String>` expression (a `const`,
///   `include_str!(..)`, `format!(..)` of the fn's arguments or `self`), evaluated inside the
///   fn on every call. Sent to Fabraix, never logged.
/// - `conversation = <expr>`: the conversation this call is a turn of, an expression over
///   the fn's arguments (or `self`) that reads as a string (`&request.conversation_id`,
///   anything `AsRef<str>`), evaluated on entry. The call continues the conversation's run
///   while it is live, and registers one otherwise: after `conversation_idle` without a
///   turn (30 min by default), when the run is older than `conversation_max_age` (24 h), or
///   after `fabraix::conversation(id).end(agent_id)`. Concurrent first turns register once
///   (the others wait for that registration, and share its failure, each following its
///   own `on_failure`). A run is one agent's: the key is the agent id and the conversation
///   id together. Conversations live in the client, in this process; see
///   `fabraix::Conversation`, which is the same without the attribute. An empty literal is
///   a compile error; an empty id at run time is a run of its own.
/// - `on_failure = "continue" | "error" | "panic"` (default `"continue"`): when the run
///   cannot be registered after the client's retries. `"continue"` runs the body with no
///   trace and emits one `tracing` warning; `"error"` returns `Err(fabraix::Error.into())`
///   without running the body (the fn must return `Result<T, E>` with
///   `E: From<fabraix::Error>`); `"panic"` panics with the error. Under `"continue"`, the
///   run keeps the error: checks and guarded tools inside it answer
///   `fabraix::Error::Unregistered { cause }`. A disabled SDK (`FABRAIX_DISABLED=1`) always
///   runs the body, untraced.
/// - `client = <expr>`: a `&fabraix::Client` to register through instead of the global one;
///   the run's events and checks go through it too.
/// - `crate = "path"`: where the `fabraix` facade is, for crates that re-export it.
///
/// # What the fn becomes
///
/// - `async fn`: the registration is awaited on entry, then the body runs inside the run.
/// - `fn`: the registration blocks on entry (with no runtime, or inside one of any flavor:
///   the request runs on the SDK's own thread), then the body runs inside the run.
/// - `fn .. -> impl Future` and fns ending in `Box::pin(async ..)` / `async {..}.boxed()`:
///   the returned future registers when first polled and runs inside the run, as an
///   `async fn` would.
/// - `return`, `?`, panics and the value behave exactly as without the attribute. When the
///   body ends, the run's queued events are flushed (bounded by the client's flush timeout);
///   for a conversation's turn, the conversation's run stays live for the next turn.
/// - Nested agent fns get their own run; the outer run is current again afterwards.
/// - A bare `tokio::spawn`, `tokio::task::spawn_blocking` or `std::thread::spawn` in the body
///   gets a warning: the trace does not follow; use `fabraix::spawn` and friends.
///
/// Works on methods (`self`, `&self`, `&mut self`), generic fns, `unsafe fn`, any
/// visibility, with `#[tokio::main]` / `#[tokio::test]` above or below it. Misuse (an
/// unknown or duplicate argument, a missing `id`, a `const fn`, a trait method without a
/// body, anything but a fn) is a compile error on the token to change.
#[proc_macro_attribute]
pub fn agent(args: TokenStream, input: TokenStream) -> TokenStream {
    agent::expand(args.into(), input.into()).into()
}

/// Checks each call of the fn with Fabraix (`POST /check`, in the current run) before its
/// body runs: the body runs only if the verdict approves the call.
///
/// ```rust,ignore
/// /// Move money between two accounts.
/// #[fabraix::action]
/// async fn transfer_funds(to: String, amount_cents: u64) -> Result<Receipt, ToolError> {
///     // runs only when Fabraix approves this call
/// }
/// ```
///
/// The check describes the call as a function: `name` is the fn's name, `description` its
/// doc comment, `parameters` an object schema with one property per argument (each
/// argument's type must be `serde::Serialize + schemars::JsonSchema`), and the arguments'
/// values go as the check's content. A receiver (`self`) is never sent.
///
/// - Approved: the body runs, then a `tool` event records the call and whether it returned
///   `Ok`.
/// - Blocked: the body never runs; the fn returns
///   `Err(fabraix::Error::Blocked { reasoning, action_check_id }.into())`.
/// - No verdict can be had: the body never runs and the fn returns `Err(..)`. Checks fail
///   closed. Outside any run: `fabraix::Error::NoTrace`; inside a run that could not be
///   registered: `fabraix::Error::Unregistered { cause }`, naming why (a 401, a timeout);
///   the API down or its answer malformed: that error.
/// - The SDK disabled (`FABRAIX_DISABLED=1` or `ClientBuilder::disabled(true)`): checking
///   was turned off on purpose, so the body **runs, unchecked**, and the first such call in
///   the process logs one `tracing` warning saying that guarded tools run unchecked. Only
///   a disabled SDK does this; a missing key, a bad URL or a failed registration refuse.
///
/// The fn must return `Result<T, E>` with `E: From<fabraix::Error>`. Sync fns block on the
/// check; async fns await it.
///
/// # Options
///
/// - `name = "…"`: the action's name, instead of the fn's.
/// - `description = "…"`: instead of the doc comment.
/// - `skip(arg, …)`: arguments that are not data (handles, clients, connections); they are
///   neither described nor sent.
/// - `crate = "path"`: where the `fabraix` facade is, for crates that re-export it.
#[proc_macro_attribute]
pub fn action(args: TokenStream, input: TokenStream) -> TokenStream {
    action::expand(args.into(), input.into()).into()
}
