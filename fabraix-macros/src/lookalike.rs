//! The rule for agent-id literals, the same as `AgentId::parse` applies at run time.

/// Why an `id` literal cannot be an agent id, if it cannot.
pub(crate) fn agent_id_problem(text: &str) -> Option<&'static str> {
    if text.trim().is_empty() {
        return Some(
            "`id` is empty; name the agent, e.g. `id = \"support-bot\"`, or give its UUID",
        );
    }
    if looks_like_uuid(text) && !is_uuid(text) {
        return Some(
            "`id` looks like a UUID but is not a valid one; write a UUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (32 hex digits), or a name such as `support-bot`",
        );
    }
    None
}

/// Only hex digits and dashes with at least four dashes, or 32+ hex digits alone.
fn looks_like_uuid(text: &str) -> bool {
    let text = strip(text);
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return false;
    }
    let dashes = text.chars().filter(|&c| c == '-').count();
    dashes >= 4 || (dashes == 0 && text.len() >= 32)
}

/// What `uuid::Uuid::try_parse` accepts: simple, hyphenated, braced or urn forms.
fn is_uuid(text: &str) -> bool {
    let inner = if let Some(rest) = text.strip_prefix("urn:uuid:") {
        rest
    } else if let Some(rest) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        rest
    } else {
        text
    };
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    if hex(inner, 32) {
        return !text.starts_with('{') && !text.starts_with("urn:");
    }
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&groups)
            .all(|(n, g)| hex(g, *n))
}

fn strip(text: &str) -> &str {
    let text = text.trim();
    let text = text.strip_prefix("urn:uuid:").unwrap_or(text);
    text.trim_start_matches('{').trim_end_matches('}')
}
