//! A guarded `tools/call`: the run, the check, then the tool or a refusal.

use fabraix::{Client, Trace, Verdict};
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::{RequestContext, RoleServer};

use crate::action::tool_action;
use crate::guarded::Guarded;
use crate::meta::extract_trace;
use crate::refusal::Refusal;
use crate::tool_event;

/// A call Fabraix approved, with the run it belongs to.
struct Approved {
    client: Client,
    trace: Trace,
    verdict: Verdict,
}

impl<S: ServerHandler> Guarded<S> {
    /// Answers a `tools/call`: the inner server's tool if Fabraix approves the call, else a
    /// tool error result. The tool never runs without an approving verdict.
    pub(crate) async fn checked_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let approved = match self.approve(&request, &context).await {
            Ok(approved) => approved,
            Err(refusal) => return Ok(refusal.into_result(&request.name).into()),
        };
        let tool = request.name.to_string();
        let arguments = request.arguments.clone();
        // Bound to the client that checked it, so the tool's own events and checks go there too.
        let trace = approved.client.bind(approved.trace);
        let response = fabraix::scope(trace, self.inner.call_tool(request, context)).await;
        tool_event::record(
            &approved.client,
            &approved.trace,
            &tool,
            arguments,
            &approved.verdict,
            &response,
        );
        response
    }

    async fn approve(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Approved, Refusal> {
        let client = self.guard.resolve_client().map_err(Refusal::Unchecked)?;
        let trace = match self.inbound_trace(request, context) {
            Some(trace) => trace,
            None => self
                .session
                .get_or_register(&client, || self.guard.registration(&self.inner.get_info()))
                .await
                .map_err(Refusal::Unchecked)?,
        };
        let tool = self.catalog.find(&self.inner, &request.name, context).await;
        let action = tool_action(&request.name, tool.as_ref(), request.arguments.as_ref());
        let verdict = client
            .check_action(trace.trace_id(), &action)
            .await
            .map_err(Refusal::Unchecked)?;
        if !verdict.is_safe {
            return Err(Refusal::Blocked(verdict));
        }
        Ok(Approved {
            client,
            trace,
            verdict,
        })
    }

    /// The caller's trace, if the guard trusts it: rmcp moves a request's `_meta` into its
    /// context; the params' own `_meta` is read too, for handlers called some other way.
    fn inbound_trace(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<Trace> {
        if !self.guard.trusts(context) {
            return None;
        }
        extract_trace(&context.meta).or_else(|| request.meta.as_ref().and_then(extract_trace))
    }
}
