//! One attempt at one request: POST the body, read the answer within the limits, and say
//! what came of it. Retrying is [`Api::call`](super::Api::call)'s business.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::answer;
use super::retry::parse_retry_after;
use super::scrub::scrub;
use super::settings::{MAX_RESPONSE_BYTES, Settings};
use crate::model::Error;
use crate::model::wire::Endpoint;

/// How much of an error answer's body is read: plenty for the documented error body.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// What one attempt came to, when it was not a success: the error, and the wait the server
/// asked for (429 and 503 only). Whether to try again is the error's to say
/// ([`Error::is_retryable`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: Error,
    pub retry_after: Option<Duration>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// The http client of one [`Api`](super::Api): one connection pool, no redirects.
pub(super) fn build_client(settings: &Settings) -> Result<reqwest::Client, Error> {
    let mut http = reqwest::Client::builder()
        .connect_timeout(settings.options.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        // A redirect would carry `x-api-key` and the body to wherever it points, even
        // from https to plain http: the API never redirects, so a 3xx is an error.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fabraix-rust/", env!("CARGO_PKG_VERSION")));
    if settings.is_loopback() {
        // A proxy from the environment must not capture loopback traffic.
        http = http.no_proxy();
    }
    http.build()
        .map_err(|e| Error::Config(scrub(&format!("could not build the http client: {e}"))))
}

/// Sends `body` to `endpoint` once, taking at most `limit`, and answers the success body.
pub(super) async fn attempt(
    http: &reqwest::Client,
    settings: &Settings,
    endpoint: Endpoint,
    body: Bytes,
    limit: Duration,
) -> Result<Vec<u8>, Failure> {
    if limit.is_zero() {
        return Err(Error::Timeout {
            after: settings.options.deadline,
        }
        .into());
    }
    let mut key = HeaderValue::from_str(settings.key()).map_err(|_| {
        Failure::from(Error::Config(
            "the api key cannot be sent as a header".into(),
        ))
    })?;
    key.set_sensitive(true);
    // A key remembered after this client was built may be in its URL: never send it.
    let url = settings.endpoint_url(endpoint)?;
    let request = http
        .post(url)
        .header("x-api-key", key)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send();
    let exchange = async {
        let response = request.await.map_err(|e| transport(settings, e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if (200..300).contains(&status) {
            read_capped(settings, endpoint, response).await
        } else {
            // The status decides; the body only adds detail. An error page cut short or
            // over the cap must not turn a 401 into a retried transport error, or a 503
            // into a decode error that is never retried.
            let bytes = read_error_body(response).await;
            Err(Failure {
                error: answer::status_error(status, retry_after, &bytes),
                retry_after: if matches!(status, 429 | 503) {
                    retry_after
                } else {
                    None
                },
            })
        }
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout { after: limit }.into()),
    }
}

/// Reads the body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_capped(
    settings: &Settings,
    endpoint: Endpoint,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, Failure> {
    let too_big = || {
        Failure::from(Error::Decode {
            endpoint: endpoint.path(),
            message: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
            snippet: String::new(),
        })
    };
    let declared = declared_length(&response);
    if declared.is_some_and(|len| len > MAX_RESPONSE_BYTES as u64) {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(settings, e))? {
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

/// A failure of the connection or of reading the answer. The `reqwest::Error` itself is
/// not kept: its `Debug` and `Display` hold the request's URL, which may hold a key. What
/// is kept is its kind and its message chain, scrubbed.
fn transport(settings: &Settings, error: reqwest::Error) -> Failure {
    let o = &settings.options;
    if error.is_timeout() {
        return Error::Timeout {
            after: if error.is_connect() {
                o.connect_timeout
            } else {
                o.timeout
            },
        }
        .into();
    }
    let cause = TransportCause {
        kind: if error.is_connect() {
            "connect"
        } else if error.is_body() || error.is_decode() {
            "body"
        } else if error.is_request() {
            "request"
        } else {
            "other"
        },
        message: scrub(&error_chain(&error)),
        io: io_error(&error).map(|io| std::io::Error::new(io.kind(), scrub(&io.to_string()))),
    };
    Error::Transport {
        message: cause.message.clone(),
        source: Some(Arc::new(cause) as Arc<dyn StdError + Send + Sync>),
    }
    .into()
}

/// The cause of an [`Error::Transport`]: what failed and how, scrubbed of keys, and the
/// operating system's error beneath it (its kind, e.g. `ConnectionReset`, and its message).
struct TransportCause {
    kind: &'static str,
    message: String,
    io: Option<std::io::Error>,
}

impl fmt::Display for TransportCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

impl fmt::Debug for TransportCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportCause")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("io", &self.io.as_ref().map(std::io::Error::kind))
            .finish()
    }
}

impl StdError for TransportCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.io.as_ref().map(|io| io as &(dyn StdError + 'static))
    }
}

/// The first `std::io::Error` in an error's chain.
fn io_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a std::io::Error> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
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
