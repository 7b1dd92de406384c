//! The rule for agent-id literals, the same as `IntoAgentId` applies to text at run time.

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

/// The same rule as `IntoAgentId` for text in the runtime (keep the two identical).
fn looks_like_uuid(text: &str) -> bool {
    let text = text.trim();
    let text = text
        .strip_prefix("urn:uuid:")
        .unwrap_or(text)
        .trim_start_matches('{')
        .trim_end_matches('}');
    // `_` separates groups as `-` does: `550e8400_e29b_…` is a UUID written wrong.
    let separator = |c: char| c == '-' || c == '_';
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || separator(c))
    {
        return false;
    }
    let hex = text.chars().filter(char::is_ascii_hexdigit).count();
    let separators = text.chars().filter(|&c| separator(c)).count();
    // Hex digits and separators only, with the separators a UUID has.
    if separators >= 4 && hex + separators == text.len() {
        return true;
    }
    // Five groups shaped 8-4-4-4-12, give or take a character: a typo in a UUID.
    let groups: Vec<usize> = text.split(separator).map(str::len).collect();
    if groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(n, want)| n.abs_diff(want) <= 1)
    {
        return true;
    }
    // The 32-digit form (or longer), nearly all hex.
    separators == 0 && text.len() >= 31 && hex + 4 >= text.len()
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
