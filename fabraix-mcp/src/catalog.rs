//! The definitions of the inner server's tools, for their descriptions and input schemas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::ServerHandler;
use rmcp::model::{PaginatedRequestParams, Tool};
use rmcp::service::{RequestContext, RoleServer};

/// A server that keeps handing out cursors is not listed past this many pages.
const MAX_PAGES: usize = 64;

type Tools = Arc<HashMap<String, Tool>>;

/// The tools the inner server lists, read once and read again when a call names a tool
/// they do not hold (the server may have added it since).
#[derive(Debug, Default)]
pub(crate) struct ToolCatalog {
    listed: Mutex<Option<Tools>>,
}

impl ToolCatalog {
    /// The definition of the tool `name`: the server's own [`ServerHandler::get_tool`]
    /// (what `#[tool_handler]` writes), else its `tools/list`. `None` for a tool the server
    /// does not list.
    pub(crate) async fn find<S: ServerHandler>(
        &self,
        server: &S,
        name: &str,
        context: &RequestContext<RoleServer>,
    ) -> Option<Tool> {
        if let Some(tool) = server.get_tool(name) {
            return Some(tool);
        }
        if let Some(tool) = self.lock().as_ref().and_then(|tools| tools.get(name)) {
            return Some(tool.clone());
        }
        let tools = list(server, context).await?;
        let tool = tools.get(name).cloned();
        *self.lock() = Some(tools);
        tool
    }

    fn lock(&self) -> MutexGuard<'_, Option<Tools>> {
        // Plain data: a panic elsewhere while it was held leaves nothing half-written.
        self.listed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every page of the server's `tools/list`; `None` if it fails.
async fn list<S: ServerHandler>(server: &S, context: &RequestContext<RoleServer>) -> Option<Tools> {
    let mut tools = HashMap::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let params =
            cursor.map(|cursor| PaginatedRequestParams::default().with_cursor(Some(cursor)));
        let page = match server.list_tools(params, context.clone()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::debug!(target: "fabraix_mcp", message = %error.message, "tools/list failed; checking the call without the tool's schema");
                return None;
            }
        };
        tools.extend(
            page.tools
                .into_iter()
                .map(|tool| (tool.name.to_string(), tool)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Some(Arc::new(tools))
}
