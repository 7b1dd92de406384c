//! The `baggage` header (W3C Baggage): the two Fabraix members, read from and merged into
//! whatever list a request already carries.
//!
//! ```text
//! baggage-string = list-member 0*179( OWS "," OWS list-member )
//! list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//! property       = key OWS "=" OWS value / key OWS
//! key            = token
//! value          = *baggage-octet      ; percent-encoded UTF-8 beyond these
//! ```

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::percent_decode_str;
use uuid::Uuid;

use crate::model::AgentId;

/// The member naming the run's agent.
pub(crate) const AGENT_ID: &str = "fabraix.agent_id";

/// The member holding when the run was registered.
pub(crate) const REGISTERED_AT: &str = "fabraix.registered_at";

/// The most list members a baggage may hold (W3C Baggage, "Limits").
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// The most bytes a baggage may hold, all its headers together (W3C Baggage, "Limits").
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// The Fabraix members of a baggage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Members {
    pub(crate) agent_id: AgentId,
    pub(crate) registered_at: DateTime<Utc>,
}

impl Members {
    /// The two members as list members, in the order written.
    fn encode(&self) -> [String; 2] {
        [
            format!("{AGENT_ID}={}", self.agent_id.as_uuid().hyphenated()),
            format!(
                "{REGISTERED_AT}={}",
                self.registered_at
                    .to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
        ]
    }
}

/// Reads the Fabraix members from a baggage given as one or more header values. `None`
/// when the baggage breaks the grammar or the limits anywhere, or when either member is
/// missing, repeated or malformed.
pub(crate) fn decode(values: &[&str]) -> Option<Members> {
    let bytes = values.iter().map(|v| v.len()).sum::<usize>() + values.len().saturating_sub(1);
    if bytes > MAX_BAGGAGE_BYTES {
        return None;
    }
    let (mut agent_id, mut registered_at) = (None, None);
    let mut count = 0;
    for member in values.iter().flat_map(|v| v.split(',')) {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_BAGGAGE_MEMBERS {
            return None;
        }
        let (key, value) = parse_member(member)?;
        let slot = match key {
            AGENT_ID => &mut agent_id,
            REGISTERED_AT => &mut registered_at,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some(Members {
        agent_id: parse_agent_id(&decode_value(agent_id?)?)?,
        registered_at: parse_registered_at(&decode_value(registered_at?)?)?,
    })
}

/// The baggage to write: the valid members of `existing` (Fabraix's own replaced) in their
/// order, then the Fabraix members. Members are dropped from the end of `existing` only
/// when the whole would break the W3C limits, which would cost the receiver the trace.
pub(crate) fn merge(existing: &[&str], members: &Members) -> String {
    let ours = members.encode();
    let mut budget = MAX_BAGGAGE_BYTES - ours.iter().map(|m| m.len() + 1).sum::<usize>();
    let mut kept: Vec<&str> = Vec::new();
    for member in existing.iter().flat_map(|v| v.split(',')) {
        let member = trim_ows(member);
        let Some((key, _)) = parse_member(member) else {
            continue;
        };
        if key == AGENT_ID || key == REGISTERED_AT {
            continue;
        }
        if kept.len() + ours.len() >= MAX_BAGGAGE_MEMBERS || member.len() + 1 > budget {
            break;
        }
        budget -= member.len() + 1;
        kept.push(member);
    }
    let mut out = String::with_capacity(MAX_BAGGAGE_BYTES - budget);
    for member in kept.into_iter().chain(ours.iter().map(String::as_str)) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(member);
    }
    out
}

/// Splits a non-empty list member into its key and raw value, checking every part of it
/// (properties included) against the grammar.
fn parse_member(member: &str) -> Option<(&str, &str)> {
    let mut parts = member.split(';');
    let (key, value) = parse_pair(parts.next()?)?;
    let value = value?;
    for property in parts {
        parse_pair(property)?;
    }
    Some((key, value))
}

/// `key OWS "=" OWS value` (value `Some`) or `key OWS` (value `None`), surrounded by OWS.
fn parse_pair(text: &str) -> Option<(&str, Option<&str>)> {
    let (key, value) = match text.split_once('=') {
        Some((key, value)) => (trim_ows(key), Some(trim_ows(value))),
        None => (trim_ows(text), None),
    };
    if key.is_empty() || !key.bytes().all(is_tchar) {
        return None;
    }
    if let Some(value) = value
        && !value.bytes().all(is_baggage_octet)
    {
        return None;
    }
    Some((key, value))
}

fn decode_value(raw: &str) -> Option<Cow<'_, str>> {
    // A `%` not followed by two hex digits is malformed, not a literal `%`.
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
    }
    percent_decode_str(raw).decode_utf8().ok()
}

/// A UUID in its hyphenated form; the other forms `uuid` accepts are not this format.
fn parse_agent_id(text: &str) -> Option<AgentId> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok().map(AgentId::from_uuid)
}

fn parse_registered_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// W3C Baggage `baggage-octet`: visible ASCII but `"`, `,`, `;` and `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const AGENT: &str = "9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b";
    const AT: &str = "2024-01-15T14:30:45.123Z";

    fn members() -> Members {
        Members {
            agent_id: AgentId::parse(AGENT).unwrap(),
            registered_at: Utc.timestamp_millis_opt(1_705_329_045_123).unwrap(),
        }
    }

    fn ours() -> String {
        format!("{AGENT_ID}={AGENT},{REGISTERED_AT}={AT}")
    }

    #[test]
    fn writes_the_two_members() {
        assert_eq!(merge(&[], &members()), ours());
        assert_eq!(decode(&[&ours()]), Some(members()));
    }

    #[test]
    fn keeps_other_members_and_replaces_its_own() {
        let existing = format!(
            "userId=alice, serverNode = DF%2028 ;prop;p2=v, {AGENT_ID}=00000000-0000-0000-0000-000000000001,isProduction=false"
        );
        let merged = merge(&[&existing, "tenant=acme"], &members());
        assert_eq!(
            merged,
            format!(
                "userId=alice,serverNode = DF%2028 ;prop;p2=v,isProduction=false,tenant=acme,{}",
                ours()
            )
        );
        assert_eq!(decode(&[&merged]), Some(members()));
    }

    #[test]
    fn drops_invalid_members_when_merging() {
        let merged = merge(&["good=1,bad value,=x,also good=2,k=\"q\""], &members());
        assert_eq!(merged, format!("good=1,{}", ours()));
    }

    #[test]
    fn merging_stays_within_the_limits() {
        let many: Vec<String> = (0..400).map(|i| format!("k{i}=v")).collect();
        let merged = merge(&[&many.join(",")], &members());
        assert_eq!(merged.split(',').count(), MAX_BAGGAGE_MEMBERS);
        assert_eq!(decode(&[&merged]), Some(members()));

        let big = format!("big={}", "x".repeat(5000));
        let merged = merge(&[&big, &big, "small=1"], &members());
        assert!(merged.len() <= MAX_BAGGAGE_BYTES);
        assert!(merged.starts_with(&big));
        assert_eq!(decode(&[&merged]), Some(members()));
    }

    #[test]
    fn reads_across_several_headers_whitespace_and_percent_encoding() {
        let agent = format!(" {AGENT_ID} = {AGENT} ;meta");
        let at = format!("{REGISTERED_AT}=2024-01-15T14%3A30%3A45.123Z");
        assert_eq!(decode(&[&agent, "a=b,,", &at]), Some(members()));
        let offset = format!("{AGENT_ID}={AGENT},{REGISTERED_AT}=2024-01-15T15:30:45.123+01:00");
        assert_eq!(decode(&[&offset]), Some(members()));
    }

    #[test]
    fn refuses_anything_malformed() {
        let agent = format!("{AGENT_ID}={AGENT}");
        let at = format!("{REGISTERED_AT}={AT}");
        for bad in [
            String::new(),
            agent.clone(),
            at.clone(),
            format!("{agent},{at},{agent}"),
            format!("{AGENT_ID}=not-a-uuid,{at}"),
            format!("{AGENT_ID}={},{at}", AGENT.replace('-', "")),
            format!("{AGENT_ID}={{{AGENT}}},{at}"),
            format!("{agent},{REGISTERED_AT}=yesterday"),
            format!("{agent},{REGISTERED_AT}=2024-01-15"),
            format!("{agent},{at},bad member"),
            format!("{agent},{at},k=v;"),
            format!("{agent},{at},k=\"v\""),
            format!("{agent},{at},k=v\\"),
            format!("{agent},{at},k=é"),
            format!("{agent},{at},=v"),
            format!("{agent},{at},k"),
            format!("{AGENT_ID}=%zz{AGENT},{at}"),
            format!("{AGENT_ID}=%FF,{at}"),
            format!("{agent},{at},big={}", "x".repeat(MAX_BAGGAGE_BYTES)),
            format!(
                "{agent},{at},{}",
                (0..MAX_BAGGAGE_MEMBERS - 1)
                    .map(|i| format!("k{i}=v"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ] {
            assert_eq!(decode(&[&bad]), None, "{bad:?}");
        }
        let at_limit = format!(
            "{agent},{at},{}",
            (0..MAX_BAGGAGE_MEMBERS - 2)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(decode(&[&at_limit]), Some(members()));
    }
}
