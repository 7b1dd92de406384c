//! What a call answers when its tool does not run: a tool error result the model can read.

use fabraix::{Error, Verdict};
use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::json;

/// The key of a refusal's details in the result's `_meta`.
pub const REFUSAL_META_KEY: &str = "com.fabraix/refusal";

/// Why a call's tool did not run.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Fabraix checked the call and blocked it.
    Blocked(Verdict),
    /// No verdict could be had: no client, no run, or no answer from Fabraix (never a
    /// disabled SDK: its calls run unchecked).
    Unchecked(Error),
}

impl Refusal {
    /// The result the call answers: `isError: true`, a text for the model, and the
    /// details under [`REFUSAL_META_KEY`] in `_meta` for programs.
    pub(crate) fn into_result(self, tool: &str) -> CallToolResult {
        let (text, details) = match self {
            Refusal::Blocked(verdict) => (
                format!(
                    "Fabraix blocked this call of `{tool}`, so the tool did not run. Reasoning: {}",
                    verdict.reasoning
                ),
                json!({
                    "verdict": "blocked",
                    "reasoning": verdict.reasoning,
                    "action_check_id": verdict.action_check_id,
                }),
            ),
            Refusal::Unchecked(error) => {
                tracing::warn!(target: "fabraix_mcp", tool, %error, "tool call could not be checked; the tool did not run");
                (
                    format!(
                        "Fabraix could not check this call of `{tool}`, so the tool did not run: {error}"
                    ),
                    json!({ "verdict": "unchecked", "error": error.to_string() }),
                )
            }
        };
        let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
        let mut meta = MetaObject::new();
        meta.insert(REFUSAL_META_KEY.to_owned(), details);
        result.meta = Some(meta);
        result
    }
}
