//! The Fabraix action a `tools/call` is checked as.

use fabraix::Action;
use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

/// The action Fabraix checks for a call of the tool `name` with `arguments`: the tool's
/// name, its description, its `input_schema` as the parameters, and the arguments (`{}`
/// when the call has none). Without the tool's definition (a tool the server does not
/// list), the parameters are any object.
///
/// The guarded server checks calls as this action; an agent that checks a call before
/// sending it ([`check_tool_call`](crate::check_tool_call)) asks about the same one.
///
/// ```
/// use rmcp::model::Tool;
/// use std::sync::Arc;
///
/// let schema = serde_json::json!({
///     "type": "object",
///     "properties": { "name": { "type": "string" } },
///     "required": ["name"]
/// });
/// let tool = Tool::new("delete_note", "Delete a note.", Arc::new(schema.as_object().unwrap().clone()));
/// let arguments = serde_json::json!({ "name": "groceries" });
/// let action = fabraix_mcp::tool_action("delete_note", Some(&tool), arguments.as_object());
/// assert_eq!(action.name(), "delete_note");
/// ```
pub fn tool_action(name: &str, tool: Option<&Tool>, arguments: Option<&JsonObject>) -> Action {
    let mut action = Action::new(name);
    if let Some(tool) = tool {
        action = action.parameters(Value::Object(tool.input_schema.as_ref().clone()));
        if let Some(description) = tool.description.as_deref()
            && !description.trim().is_empty()
        {
            action = action.description(description);
        }
    } else {
        action = action.parameters(serde_json::json!({ "type": "object" }));
    }
    match arguments {
        Some(arguments) => action.arguments(arguments),
        None => action.arguments(&JsonObject::new()),
    }
}
