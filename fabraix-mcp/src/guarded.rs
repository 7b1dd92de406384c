//! [`Guarded`]: an rmcp server whose every `tools/call` is checked by Fabraix first.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use fabraix::Trace;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};

use crate::catalog::ToolCatalog;
use crate::guard::Guard;
use crate::session::SessionRun;

/// Guards `server` with the default settings: checks go through the global client
/// ([`fabraix::global_client`], from the environment unless [`fabraix::init`] set one),
/// and calls that carry no trace in `_meta` run under a run the server registers for its
/// session, as the agent named after the server (its `get_info().server_info.name`).
///
/// ```no_run
/// # use rmcp::ServerHandler;
/// # async fn demo<S: ServerHandler>(my_server: S) -> Result<(), Box<dyn std::error::Error>> {
/// use rmcp::ServiceExt;
///
/// let service = fabraix_mcp::guard(my_server)
///     .serve(rmcp::transport::io::stdio())
///     .await?;
/// service.waiting().await?;
/// # Ok(()) }
/// ```
pub fn guard<S: ServerHandler>(server: S) -> Guarded<S> {
    Guard::new().wrap(server)
}

impl Guard {
    /// Guards `server` with these settings.
    pub fn wrap<S: ServerHandler>(&self, server: S) -> Guarded<S> {
        Guarded::new(server, self.clone())
    }
}

/// An rmcp server whose every `tools/call` is checked by Fabraix before the tool runs.
/// Made by [`guard`](crate::guard) or [`Guard::wrap`]; everything else the server does
/// (initialization, listing tools, resources, prompts, notifications) passes through
/// unchanged.
///
/// For each `tools/call`:
///
/// 1. **The run.** The trace in the request's `_meta` (`traceparent` and `baggage`, as
///    [`fabraix::propagation`] writes them), so the tool acts in the caller's run. A call
///    with no trace there, or a malformed one, runs in the server's own run for the
///    session: registered at the first such call, and reused for every later one.
/// 2. **The check.** [`Client::check_action`](fabraix::Client::check_action) with the
///    tool's name, its description, its `input_schema` as the parameters and the call's
///    arguments.
/// 3. **The verdict.**
///    - approved: the tool runs inside the run (its own [`fabraix::current_trace`] and
///      [`fabraix::log_event`] work), and its result is logged as a `tool` event;
///    - blocked: the tool does not run; the call answers a tool error
///      (`isError: true`) whose text carries Fabraix's reasoning, so the model can adapt;
///    - no verdict (Fabraix unreachable, an error answer, no run): the tool does not run
///      either; the call answers a tool error saying that it could not be checked;
///    - the SDK disabled (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): checking
///      is off, so the tool runs unchecked (in the caller's run if the call names one),
///      with one `tracing` warning per process. See the crate docs, "Disabled means off".
///
/// A call sent again with the answers to the server's input requests (MCP's multi-round
/// tool calls) is a new `tools/call`, checked again. A tool that answers with a task and
/// goes on working in a task of its own carries the run there itself
/// ([`fabraix::spawn`]).
pub struct Guarded<S> {
    pub(crate) inner: S,
    pub(crate) guard: Guard,
    pub(crate) session: SessionRun,
    pub(crate) catalog: ToolCatalog,
}

impl<S: ServerHandler> Guarded<S> {
    pub(crate) fn new(inner: S, guard: Guard) -> Self {
        Self {
            inner,
            guard,
            session: SessionRun::default(),
            catalog: ToolCatalog::default(),
        }
    }

    /// The guarded server.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The guarded server, unguarded.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The run this server registered for its session, once a call without a trace in
    /// `_meta` made it register one.
    pub fn session_trace(&self) -> Option<Trace> {
        self.session.get()
    }
}

impl<S: fmt::Debug> fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("guard", &self.guard)
            .field("session_trace", &self.session.get())
            .finish_non_exhaustive()
    }
}

// Every method but `call_tool` is the inner server's own.
#[allow(deprecated)] // `subscribe` and `unsubscribe` are deprecated, yet still served
impl<S: ServerHandler> ServerHandler for Guarded<S> {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_prompt(request, context)
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_prompts(request, context)
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_resources(request, context)
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.read_resource(request, context)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.subscribe(request, context)
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }

    /// Checks the call with Fabraix, then runs the inner server's tool only if the verdict
    /// approves it, or the SDK is disabled (see [`Guarded`]).
    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + MaybeSendFuture + '_ {
        self.checked_call(request, context)
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_tools(request, context)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}
