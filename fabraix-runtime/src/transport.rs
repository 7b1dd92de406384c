//! One API call: POST a JSON body, retry what may succeed later, decode the answer.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::config::{Config, MAX_RESPONSE_BYTES};
use crate::error::{Error, is_retryable_status};
use crate::retry::parse_retry_after;
use crate::wire::ErrorBody;

/// How much of an unexpected body an error quotes.
const SNIPPET_CHARS: usize = 160;

/// How much of an error answer's body is read: plenty for the documented error body.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// What one attempt came to, when it was not a success.
pub(crate) struct Failure {
    pub error: Error,
    pub retryable: bool,
    /// The wait the server asked for (429 and 503 only).
    pub retry_after: Option<Duration>,
}

/// One attempt, no retries: for callers with a retry policy of their own (the exporter).
pub(crate) async fn post_once<T: DeserializeOwned>(
    http: &reqwest::Client,
    config: &Config,
    endpoint: &'static str,
    body: Bytes,
) -> Result<T, Failure> {
    let url = config.endpoint(endpoint);
    let bytes = attempt(http, config, &url, endpoint, body, config.timeout).await?;
    decode(key(config), endpoint, &bytes).map_err(|error| Failure {
        error,
        retryable: false,
        retry_after: None,
    })
}

/// Sends `body` (shared between attempts without copying) to `endpoint` (e.g. `/register-agent-run`) under the client's retry policy
/// and deadline, and decodes a success as `T`. Runs on the SDK's own runtime.
/// At most `permits` attempts are in flight at once, across all calls of the client, so a
/// burst of calls shares a bounded set of connections instead of opening one each.
pub(crate) async fn post<T: DeserializeOwned>(
    http: &reqwest::Client,
    config: &Config,
    permits: &Semaphore,
    endpoint: &'static str,
    body: Bytes,
) -> Result<T, Error> {
    let url = config.endpoint(endpoint);
    let started = Instant::now();
    let mut retry = 0u32;
    loop {
        let remaining = config.deadline.saturating_sub(started.elapsed());
        let outcome = match tokio::time::timeout(remaining, permits.acquire()).await {
            Ok(Ok(_permit)) => {
                let remaining = config.deadline.saturating_sub(started.elapsed());
                attempt(http, config, &url, endpoint, body.clone(), remaining).await
            }
            _ => {
                return Err(Error::Timeout {
                    after: config.deadline,
                });
            }
        };
        let failure = match outcome {
            Ok(bytes) => return decode(key(config), endpoint, &bytes),
            Err(failure) => failure,
        };
        if !failure.retryable || retry >= config.retry.max_retries {
            return Err(failure.error);
        }
        let wait = config.retry.delay(retry, failure.retry_after);
        let past_deadline = started
            .elapsed()
            .checked_add(wait)
            .is_none_or(|at| at >= config.deadline);
        if past_deadline {
            tracing::debug!(
                target: "fabraix",
                endpoint,
                error = %failure.error,
                "not retrying: the wait would pass the call's deadline"
            );
            return Err(failure.error);
        }
        tracing::debug!(
            target: "fabraix",
            endpoint,
            error = %failure.error,
            retry = retry + 1,
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

async fn attempt(
    http: &reqwest::Client,
    config: &Config,
    url: &str,
    endpoint: &'static str,
    body: Bytes,
    remaining: Duration,
) -> Result<Vec<u8>, Failure> {
    let limit = config.timeout.min(remaining);
    if limit.is_zero() {
        return Err(Failure {
            error: Error::Timeout {
                after: config.deadline,
            },
            retryable: false,
            retry_after: None,
        });
    }
    let mut key = HeaderValue::from_str(config.api_key.expose_secret()).map_err(|_| Failure {
        error: Error::Config("the api key cannot be sent as a header".into()),
        retryable: false,
        retry_after: None,
    })?;
    key.set_sensitive(true);
    let request = http
        .post(url)
        .header("x-api-key", key)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send();
    let exchange = async {
        let response = request.await.map_err(|e| transport_failure(config, e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if (200..300).contains(&status) {
            read_capped(config, endpoint, response).await
        } else {
            // The status decides; the body only adds detail. An error page cut short or
            // over the cap must not turn a 401 into a retried transport error, or a 503
            // into a decode error that is never retried.
            let bytes = read_error_body(response).await;
            Err(status_failure(config, status, retry_after, &bytes))
        }
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure {
            error: Error::Timeout { after: limit },
            retryable: true,
            retry_after: None,
        }),
    }
}

/// Reads the body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_capped(
    config: &Config,
    endpoint: &'static str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, Failure> {
    let too_big = || Failure {
        error: Error::Decode {
            endpoint,
            message: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
            snippet: String::new(),
        },
        retryable: false,
        retry_after: None,
    };
    let declared = declared_length(&response);
    if declared.is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_failure(config, e))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The body length the answer declares, if it does.
fn declared_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// What can be read of an error answer's body, up to [`ERROR_BODY_BYTES`]: nothing when
/// it declares more, and what came before a failure when reading it fails.
async fn read_error_body(mut response: reqwest::Response) -> Vec<u8> {
    if declared_length(&response).is_some_and(|len| len > ERROR_BODY_BYTES as u64) {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(ERROR_BODY_BYTES);
    bytes
}

fn transport_failure(config: &Config, error: reqwest::Error) -> Failure {
    let timeout = error.is_timeout();
    let message = scrub(key(config), &error_chain(&error));
    let error = if timeout {
        Error::Timeout {
            after: if error.is_connect() {
                config.connect_timeout
            } else {
                config.timeout
            },
        }
    } else {
        Error::Transport {
            message,
            source: Some(Arc::new(error) as Arc<dyn StdError + Send + Sync>),
        }
    };
    Failure {
        error,
        retryable: true,
        retry_after: None,
    }
}

fn status_failure(
    config: &Config,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Failure {
    let error = if status == 429 {
        Error::RateLimited { retry_after }
    } else {
        api_error(key(config), status, body)
    };
    Failure {
        error,
        retryable: is_retryable_status(status),
        retry_after: if matches!(status, 429 | 503) {
            retry_after
        } else {
            None
        },
    }
}

/// An error status becomes [`Error::Api`], from the documented body when there is one and
/// from a snippet of whatever came otherwise.
pub(crate) fn api_error(key: &str, status: u16, body: &[u8]) -> Error {
    let documented = serde_json::from_slice::<ErrorBody>(body).ok();
    let (kind, code, message) = match documented {
        Some(ErrorBody { error }) => (
            error.kind.map(|k| scrub(key, &k)),
            error.code.map(|c| scrub(key, &c)),
            error.message.map(|m| scrub(key, &m)),
        ),
        None => (None, None, None),
    };
    let message = message.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| {
        let snippet = snippet(key, body);
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

/// Decodes a success body as `T`; `key` is scrubbed from any error.
pub(crate) fn decode<T: DeserializeOwned>(
    key: &str,
    endpoint: &'static str,
    bytes: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        endpoint,
        message: scrub(key, &e.to_string()),
        snippet: snippet(key, bytes),
    })
}

/// The start of a body, on one line, with the key removed.
pub(crate) fn snippet(key: &str, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    // Scrub before cutting: a key across the cut would otherwise leave its start behind.
    let window_chars = SNIPPET_CHARS + key.chars().count();
    let window: String = text.chars().take(window_chars).collect();
    let scrubbed = scrub(key, &window);
    let mut out: String = scrubbed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SNIPPET_CHARS)
        .collect();
    if scrubbed.chars().nth(SNIPPET_CHARS).is_some() || text.chars().nth(window_chars).is_some() {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Removes the API key from text that came from outside (a server could echo it back).
/// Also removes the key less its first or last character: what is left when a server's
/// JSON escape (`\n`, `\t`, …) swallowed the key's first letter.
pub(crate) fn scrub(key: &str, text: &str) -> String {
    let mut text = text.to_owned();
    if key.len() < 4 {
        return text;
    }
    let mut variants = vec![key];
    if key.len() >= 8 {
        variants.extend(key.get(1..));
        variants.extend(key.get(..key.len() - 1));
    }
    for variant in variants {
        if text.contains(variant) {
            text = text.replace(variant, "[redacted]");
        }
    }
    text
}

fn key(config: &Config) -> &str {
    config.api_key.expose_secret()
}

fn error_chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
