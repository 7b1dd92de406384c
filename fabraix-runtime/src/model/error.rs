//! The one error type of the SDK.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong when talking to Fabraix.
///
/// Messages are lowercase and never contain the API key. Errors are cheap to clone.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error status (after any retries).
    ///
    /// `kind`, `code` and `message` come from the documented error body
    /// `{"error": {"message", "type", "code"}}`. When the body is not that (a gateway's HTML
    /// page, plain text), `kind` and `code` are `None` and `message` holds a short snippet of
    /// the body or the status's reason.
    #[error("fabraix api error {status}: {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The error's `type`, e.g. `validation_error`.
        kind: Option<String>,
        /// The error's `code`, e.g. `INVALID_AGENT_ID`.
        code: Option<String>,
        /// The error's message.
        message: String,
    },

    /// The API kept answering 429 until the retries or the deadline ran out.
    #[error("rate limited by the fabraix api{}", retry_after_suffix(.retry_after))]
    RateLimited {
        /// The wait the server last asked for, if it said.
        retry_after: Option<Duration>,
    },

    /// The request could not be sent or its response could not be read: connection refused
    /// or reset, DNS, TLS, a body cut short.
    #[error("transport error: {message}")]
    Transport {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn StdError + Send + Sync>>,
    },

    /// No response came within the request timeout or the call's total deadline.
    #[error("timed out after {}ms", .after.as_millis())]
    Timeout {
        /// How long the SDK waited.
        after: Duration,
    },

    /// A success status came with a body that is not what the API documents.
    #[error("could not decode the response of {endpoint}: {message} (body: `{snippet}`)")]
    Decode {
        /// The endpoint, e.g. `/register-agent-run`.
        endpoint: &'static str,
        /// What was wrong.
        message: String,
        /// The start of the body, shortened and cleaned of secrets.
        snippet: String,
    },

    /// A value given to the SDK could not be turned into the JSON the API takes.
    #[error("could not encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// What was wrong.
        message: String,
    },

    /// The client's configuration is invalid.
    #[error("invalid fabraix configuration: {0}")]
    Config(String),

    /// An agent id was empty, blank, or looked like a UUID without being one.
    #[error("invalid agent id: {reason}")]
    InvalidAgentId {
        /// What was wrong.
        reason: String,
    },

    /// A trace id was not a UUID.
    #[error("invalid trace id: {reason}")]
    InvalidTraceId {
        /// What was wrong.
        reason: String,
    },

    /// The call needs an agent run, and none is current here.
    #[error(
        "no fabraix agent run is current here (call this inside a `#[fabraix::agent]` fn, or carry the trace with `fabraix::spawn`)"
    )]
    NoTrace,

    /// The call needs the current agent run's trace, and the run has none: it could not be
    /// registered (`on_failure = "continue"` ran the agent anyway). `cause` is why, e.g. the
    /// API's 401; it is also this error's [`source`](std::error::Error::source).
    ///
    /// A run without a trace because the SDK is disabled answers [`Error::Disabled`]
    /// instead.
    #[error("this fabraix agent run has no trace, because it could not be registered: {cause}")]
    Unregistered {
        /// Why the run could not be registered.
        #[source]
        cause: Arc<Error>,
    },

    /// The event queue is full, so the event was dropped (and counted).
    #[error("the fabraix event queue is full; the event was dropped")]
    QueueFull,

    /// The SDK is disabled (`FABRAIX_DISABLED=1` or `ClientBuilder::disabled`): nothing is
    /// sent, and no check can be made. A `#[fabraix::action]` tool runs unchecked instead of
    /// returning this.
    #[error("fabraix is disabled")]
    Disabled,

    /// Fabraix judged the action unsafe, so it was not taken.
    #[error("action blocked by fabraix: {reasoning}")]
    Blocked {
        /// Why, as the server put it.
        reasoning: String,
        /// The id of the check that blocked it.
        action_check_id: String,
    },

    /// [`init`](crate::init) was called after the global client was already set.
    #[error("the global fabraix client is already initialized")]
    AlreadyInitialized,

    /// The SDK's background runtime could not run the request.
    #[error("fabraix background runtime failure: {0}")]
    Runtime(String),
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}ms)", d.as_millis()),
        None => String::new(),
    }
}

impl Error {
    /// Whether trying again later could succeed: rate limits, timeouts, transport failures and
    /// the statuses 429, 500, 502, 503 and 504. Never 400, 401, 403 or 404.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    /// Whether the API could not take the request now but may soon: a rate limit, a
    /// gateway's 502, 503 or 504, a connection failure, a timeout. A 500 is retryable too,
    /// but says that the request itself failed, so it is retried a bounded number of times.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The HTTP status, for errors the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}
