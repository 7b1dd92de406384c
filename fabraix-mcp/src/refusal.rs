//! What a call answers when its tool does not run: a tool error result the model can read.

use fabraix::__private::{NotRun, refusal};
use fabraix::{Error, Verdict};
use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::json;

/// How this crate is named in what Fabraix's guards log.
pub(crate) const GUARD: &str = "fabraix-mcp";

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
    /// The result the call answers: `isError: true`, a text for the model (in the words
    /// every Fabraix guard uses), and the details under [`REFUSAL_META_KEY`] in `_meta`
    /// for programs.
    pub(crate) fn into_result(self, tool: &str) -> CallToolResult {
        let (text, details) = match self {
            Refusal::Blocked(verdict) => (
                refusal(GUARD, tool, NotRun::Blocked(&verdict.reasoning)),
                json!({
                    "verdict": "blocked",
                    "reasoning": verdict.reasoning,
                    "action_check_id": verdict.action_check_id,
                }),
            ),
            Refusal::Unchecked(error) => (
                refusal(GUARD, tool, NotRun::Unchecked(&error)),
                json!({ "verdict": "unchecked", "error": error.to_string() }),
            ),
        };
        let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
        let mut meta = MetaObject::new();
        meta.insert(REFUSAL_META_KEY.to_owned(), details);
        result.meta = Some(meta);
        result
    }
}
