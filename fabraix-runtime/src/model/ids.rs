//! Identifiers: [`AgentId`] and [`TraceId`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::Error;

/// The identity of an agent: the same for every run of one agent.
///
/// The Fabraix API wants a UUID, while agents are usually known by a name
/// (`cs-agent-prod-v1`). [`AgentId::from_name`] maps a name to a stable UUID, the same in
/// every run, process and machine, and in any language that follows the rule stated there;
/// [`AgentId::parse`] reads a UUID. Where the SDK takes an agent id as text
/// (`#[fabraix::agent(id = …)]`, [`Client::register_agent_run`](crate::Client::register_agent_run),
/// see [`IntoAgentId`]) it takes either: a UUID as is, anything else as a name.
///
/// ```
/// use fabraix::AgentId;
///
/// let named = AgentId::from_name("cs-agent-prod-v1").unwrap();
/// assert_eq!(named.as_uuid().get_version_num(), 5);
/// assert!(AgentId::parse("cs-agent-prod-v1").is_err()); // a name, not a UUID
///
/// let given = AgentId::parse("0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10").unwrap();
/// assert_eq!(given.to_string(), "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(Uuid);

impl AgentId {
    /// The namespace of [`AgentId::from_name`]:
    /// `uuid_v5(NAMESPACE_URL, "https://fabraix.com/agents")`.
    pub const NAMESPACE: Uuid = uuid::uuid!("6548b442-3113-527d-b231-9ecdb05aef06");

    /// Maps an agent name to its stable id: `uuid_v5(AgentId::NAMESPACE, name)`, with the
    /// name's UTF-8 bytes taken exactly as given (case and inner spaces matter).
    ///
    /// A name that is empty or only whitespace is an [`Error::InvalidAgentId`].
    ///
    /// ```
    /// # use fabraix::AgentId;
    /// // Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://fabraix.com/agents"), "cs-agent-prod-v1")
    /// assert_eq!(
    ///     AgentId::from_name("cs-agent-prod-v1").unwrap().to_string(),
    ///     "9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b",
    /// );
    /// ```
    pub fn from_name(name: &str) -> Result<Self, Error> {
        if name.trim().is_empty() {
            return Err(Error::InvalidAgentId {
                reason: "the agent id is empty".into(),
            });
        }
        Ok(Self(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes())))
    }

    /// Reads an agent id written as a UUID (hyphenated, simple, braced or `urn:uuid:`, in
    /// either letter case). Anything else is an [`Error::InvalidAgentId`]: a name is not
    /// a UUID, and becomes an agent id through [`AgentId::from_name`] (or wherever the SDK
    /// takes an [`IntoAgentId`]).
    pub fn parse(text: &str) -> Result<Self, Error> {
        Uuid::try_parse(text)
            .map(Self)
            .map_err(|_| Error::InvalidAgentId {
                reason: if text.trim().is_empty() {
                    "the agent id is empty".into()
                } else if looks_like_uuid(text) {
                    "the agent id looks like a UUID but is not a valid one".into()
                } else {
                    format!("`{text}` is not a UUID (for a name, use `AgentId::from_name`)")
                },
            })
    }

    /// A UUID as is, any other non-blank text as a name ([`AgentId::from_name`]): how
    /// [`IntoAgentId`] reads text. Text that looks like a UUID but is not one (a digit
    /// short, a stray letter, `_` between the groups) is an [`Error::InvalidAgentId`]
    /// rather than silently the name of a different agent.
    fn from_uuid_or_name(text: &str) -> Result<Self, Error> {
        if let Ok(uuid) = Uuid::try_parse(text) {
            return Ok(Self(uuid));
        }
        if looks_like_uuid(text) {
            return Err(Error::InvalidAgentId {
                reason: "the agent id looks like a UUID but is not a valid one".into(),
            });
        }
        Self::from_name(text)
    }

    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID sent to the API.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// True for text shaped like a UUID, so that a mistyped UUID is an error rather than the
/// name of some other agent: hex digits and at least four separators (`-` or `_`); five
/// groups of about 8-4-4-4-12 letters and digits, separated by `-` or `_`; or about 32
/// letters and digits, nearly all hex. The macro crate applies the same rule to `id` literals at compile time.
pub(crate) fn looks_like_uuid(text: &str) -> bool {
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

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.0.hyphenated())
    }
}

impl FromStr for AgentId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Uuid> for AgentId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<AgentId> for Uuid {
    fn from(id: AgentId) -> Self {
        id.0
    }
}

/// Anything that names an agent: a name or UUID as text (`&str`, `String`), an
/// [`AgentId`], or a `uuid::Uuid`. Taken by `#[fabraix::agent(id = …)]` and
/// [`Client::register_agent_run`](crate::Client::register_agent_run).
///
/// Text is a UUID when it reads as one ([`AgentId::parse`]), else a name
/// ([`AgentId::from_name`]); text that looks like a UUID without being one, or is blank, is
/// an [`Error::InvalidAgentId`].
///
/// ```
/// use fabraix::{AgentId, IntoAgentId};
///
/// assert_eq!("cs-agent-prod-v1".into_agent_id()?, AgentId::from_name("cs-agent-prod-v1")?);
/// let uuid = "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10";
/// assert_eq!(uuid.into_agent_id()?, AgentId::parse(uuid)?);
/// assert!("0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a1".into_agent_id().is_err());
/// # Ok::<(), fabraix::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "an agent id must be a name or UUID (`&str`, `String`), an `AgentId` or a `uuid::Uuid`, not `{Self}`",
    label = "write a name such as `\"support-bot\"`"
)]
pub trait IntoAgentId {
    /// The agent id: see the trait's docs for how text is read.
    fn into_agent_id(self) -> Result<AgentId, Error>;
}

impl IntoAgentId for &str {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::from_uuid_or_name(self)
    }
}

impl IntoAgentId for String {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::from_uuid_or_name(&self)
    }
}

impl IntoAgentId for &String {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::from_uuid_or_name(self)
    }
}

impl IntoAgentId for AgentId {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(self)
    }
}

impl IntoAgentId for &AgentId {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(*self)
    }
}

impl IntoAgentId for uuid::Uuid {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(AgentId::from_uuid(self))
    }
}

/// The id of one agent run, issued by Fabraix when the run is registered.
///
/// Every event and action check of the run carries it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(Uuid);

impl TraceId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID sent to the API.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.0.hyphenated())
    }
}

impl FromStr for TraceId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|e| Error::InvalidTraceId {
                reason: e.to_string(),
            })
    }
}

impl From<Uuid> for TraceId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<TraceId> for Uuid {
    fn from(id: TraceId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_v5_uuid_of_the_documented_url() {
        assert_eq!(
            AgentId::NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://fabraix.com/agents")
        );
    }

    #[test]
    fn lookalikes_are_detected() {
        for text in [
            "550e8400-e29b-41d4-a716-44665544000",
            "550e8400-e29b-41d4-a716-4466554400000",
            "550e8400e29b41d4a716446655440000ff",
            "{550e8400-e29b-41d4-a716-44665544}",
            "550e8400_e29b_41d4_a716_446655440000",
            "550e8400-e29b_41d4-a716_446655440000",
            "550E8400_E29B_41D4_A716_44665544000G",
        ] {
            assert!(looks_like_uuid(text), "{text}");
            assert!(matches!(
                text.into_agent_id(),
                Err(Error::InvalidAgentId { .. })
            ));
        }
        for text in [
            "cs-agent-prod-v1",
            "cs_agent_prod_v1",
            "support bot",
            "deadbeef",
            "a-b-c-d",
            "order_lookup_agent",
        ] {
            assert!(!looks_like_uuid(text), "{text}");
        }
    }
}
