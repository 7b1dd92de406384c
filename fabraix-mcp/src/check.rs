//! A guarded `tools/call`: the run, the check, then the tool or a refusal.

use fabraix::{Client, Error, Trace, Verdict};
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::{RequestContext, RoleServer};

use crate::action::tool_action;
use crate::disabled;
use crate::guarded::Guarded;
use crate::meta::extract_trace;
use crate::refusal::Refusal;
use crate::tool_event;

/// A call that may run.
enum Clearance {
    /// Fabraix approved it, in this run.
    Approved {
        client: Client,
        trace: Trace,
        verdict: Verdict,
    },
    /// The SDK is disabled: the call runs unchecked, in the caller's run if it named one.
    Disabled {
        client: Client,
        trace: Option<Trace>,
    },
}

impl Clearance {
    /// A call that got no verdict, because of `error`: cleared to run unchecked when the
    /// SDK is disabled, else refused.
    fn without_verdict(
        error: Error,
        request: &CallToolRequestParams,
        client: Client,
        trace: Option<Trace>,
    ) -> Result<Self, Refusal> {
        disabled::unchecked_if_disabled(error, &request.name).map_err(Refusal::Unchecked)?;
        Ok(Clearance::Disabled { client, trace })
    }
}

impl<S: ServerHandler> Guarded<S> {
    /// Answers a `tools/call`: the inner server's tool if Fabraix approves the call (or is
    /// disabled), else a tool error result. Without an approving verdict the tool runs only
    /// when the SDK is disabled.
    pub(crate) async fn checked_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let clearance = match self.clear(&request, &context).await {
            Ok(clearance) => clearance,
            Err(refusal) => return Ok(refusal.into_result(&request.name).into()),
        };
        match clearance {
            Clearance::Approved {
                client,
                trace,
                verdict,
            } => {
                let tool = request.name.to_string();
                let arguments = request.arguments.clone();
                // Bound to the client that checked it, so the tool's own events and checks
                // go there too.
                let bound = client.bind(trace);
                let response = fabraix::scope(bound, self.inner.call_tool(request, context)).await;
                tool_event::record(&client, &trace, &tool, arguments, &verdict, &response);
                response
            }
            // Nothing is recorded: a disabled client sends nothing.
            Clearance::Disabled {
                client,
                trace: Some(trace),
            } => fabraix::scope(client.bind(trace), self.inner.call_tool(request, context)).await,
            Clearance::Disabled {
                client,
                trace: None,
            } => disabled::in_untraced_run(&client, self.inner.call_tool(request, context)).await,
        }
    }

    async fn clear(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Clearance, Refusal> {
        let client = self.guard.resolve_client().map_err(Refusal::Unchecked)?;
        let trace = match self.inbound_trace(request, context) {
            Some(trace) => trace,
            None => {
                let registered = self
                    .session
                    .get_or_register(&client, || self.guard.registration(&self.inner.get_info()))
                    .await;
                match registered {
                    Ok(trace) => trace,
                    Err(error) => return Clearance::without_verdict(error, request, client, None),
                }
            }
        };
        let tool = self.catalog.find(&self.inner, &request.name, context).await;
        let action = tool_action(&request.name, tool.as_ref(), request.arguments.as_ref());
        let verdict = match client.check_action(trace.trace_id(), &action).await {
            Ok(verdict) => verdict,
            Err(error) => return Clearance::without_verdict(error, request, client, Some(trace)),
        };
        if !verdict.is_safe {
            return Err(Refusal::Blocked(verdict));
        }
        Ok(Clearance::Approved {
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
