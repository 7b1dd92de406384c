//! Reading what the API answered: a success body decoded as its documented shape, an
//! error status as [`Error::Api`]. Everything quoted from the body is scrubbed of keys.

use serde::de::DeserializeOwned;

use super::scrub::scrub;
use crate::model::AgentId;
use crate::model::Error;
use crate::model::wire::{CheckResponse, Endpoint, ErrorBody};
use crate::model::wire::{EventResponse, RegisterResponse};
use crate::model::{EventReceipt, Trace, Verdict};

/// How much of an unexpected body an error quotes.
const SNIPPET_CHARS: usize = 160;

/// Decodes a success body as `T`.
pub(crate) fn decode<T: DeserializeOwned>(endpoint: Endpoint, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        endpoint: endpoint.path(),
        message: scrub(&e.to_string()),
        snippet: snippet(bytes),
    })
}

/// A `/register-agent-run` success body, as the run of `agent_id`.
pub(crate) fn trace(agent_id: AgentId, bytes: &[u8]) -> Result<Trace, Error> {
    decode::<RegisterResponse>(Endpoint::RegisterAgentRun, bytes)?.into_trace(agent_id)
}

/// An `/event` success body.
pub(crate) fn receipt(bytes: &[u8]) -> Result<EventReceipt, Error> {
    decode::<EventResponse>(Endpoint::Event, bytes)?.into_receipt()
}

/// A `/check` success body, its words scrubbed: a server could quote a key in them.
pub(crate) fn verdict(bytes: &[u8]) -> Result<Verdict, Error> {
    let mut verdict = decode::<CheckResponse>(Endpoint::Check, bytes)?.into_verdict()?;
    super::scrub::scrub_in_place(&mut verdict.reasoning);
    super::scrub::scrub_in_place(&mut verdict.action_check_id);
    Ok(verdict)
}

/// An error status becomes [`Error::Api`], from the documented body when there is one and
/// from a snippet of whatever came otherwise. A 429 is [`Error::RateLimited`].
pub(crate) fn status_error(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
) -> Error {
    if status == 429 {
        return Error::RateLimited { retry_after };
    }
    let documented = serde_json::from_slice::<ErrorBody>(body).ok();
    let (kind, code, message) = match documented {
        Some(ErrorBody { error }) => (
            error.kind.map(|k| scrub(&k)),
            error.code.map(|c| scrub(&c)),
            error.message.map(|m| scrub(&m)),
        ),
        None => (None, None, None),
    };
    let message = message.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| {
        let snippet = snippet(body);
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("unexpected status")
            .to_ascii_lowercase();
        if snippet.is_empty() {
            reason
        } else {
            format!("{reason}: `{snippet}`")
        }
    });
    Error::Api {
        status,
        kind,
        code,
        message,
    }
}

/// The start of a body, on one line, with keys removed.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    // Scrub before cutting, with room for a whole key and its escapes past the cut: a key
    // across the cut would otherwise leave its start behind.
    const WINDOW: usize = SNIPPET_CHARS * 8;
    let window: String = text.chars().take(WINDOW).collect();
    let scrubbed = super::scrub::scrub_raw(&window);
    let mut out: String = scrubbed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SNIPPET_CHARS)
        .collect();
    if scrubbed.chars().nth(SNIPPET_CHARS).is_some() || text.chars().nth(WINDOW).is_some() {
        out.push('…');
    }
    out.trim().to_owned()
}
