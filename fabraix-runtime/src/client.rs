//! [`Client`]: the connection to the Fabraix API.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use crate::config::{ClientBuilder, Config};
use crate::error::Error;
use crate::ids::{AgentId, TraceId};
use crate::trace::Trace;
use crate::transport;
use crate::wire::{self, RegisterRequest, RegisterResponse};
use crate::{io, trace};

/// A connection to the Fabraix API: its settings and one shared connection pool.
///
/// Cheap to clone (an `Arc` inside); clones share the pool. Requests run on the SDK's own
/// runtime, so a client works from any async runtime, from synchronous code, and across
/// runtimes that come and go (every `#[tokio::test]` has its own).
///
/// ```no_run
/// # async fn demo() -> Result<(), fabraix_runtime::Error> {
/// use fabraix_runtime::{AgentId, Client};
///
/// let client = Client::from_env()?;
/// let trace = client
///     .register_agent_run(AgentId::from_name("support-bot")?, "You are a support assistant.")
///     .await?;
/// println!("run {trace} registered at {}", trace.registered_at());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
}

impl Client {
    /// A builder with every default; see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from the environment (`FABRAIX_API_KEY`, `FABRAIX_BASE_URL`,
    /// `FABRAIX_TIMEOUT_MS`, `FABRAIX_MAX_RETRIES`, `FABRAIX_DISABLED`).
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env().build()
    }

    pub(crate) fn from_config(config: Config) -> Result<Self, Error> {
        if config.base_url.scheme() == "https"
            && !cfg!(any(feature = "rustls", feature = "native-tls"))
        {
            return Err(Error::Config(
                "an https:// base url needs the `rustls` or `native-tls` feature".into(),
            ));
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("fabraix-rust/", env!("CARGO_PKG_VERSION")));
        if crate::config::is_loopback(&config.base_url) {
            // A proxy from the environment must not capture loopback traffic.
            http = http.no_proxy();
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("could not build the http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner { config, http }),
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The API's base URL, e.g. `https://dev.fabraix.com/v1`.
    pub fn base_url(&self) -> &str {
        self.inner.config.base_url.as_str()
    }

    /// Whether the client is disabled (`FABRAIX_DISABLED=1`): it never sends anything.
    pub fn is_disabled(&self) -> bool {
        self.inner.config.disabled
    }

    /// Starts a run: `POST /register-agent-run` with the agent id, the current UTC time
    /// (`YYYY-MM-DDTHH:mm:ss.sssZ`) and the system prompt.
    ///
    /// Retried on 429, 500, 502, 503, 504, connection errors and timeouts. The API has no
    /// idempotency key, so a retry after a request that reached the server but whose answer
    /// was lost registers a second run; the one returned is the one answered.
    ///
    /// The system prompt is sent, never logged.
    pub async fn register_agent_run(
        &self,
        agent_id: AgentId,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        let body = self.register_body(agent_id, system_prompt)?;
        let client = self.clone();
        io::run(async move { client.send_register(agent_id, body).await }).await?
    }

    /// [`register_agent_run`](Self::register_agent_run) for synchronous code: blocks this
    /// thread until the run is registered. Works with no async runtime and on a thread of
    /// one; the request runs on the SDK's own runtime.
    pub fn register_agent_run_blocking(
        &self,
        agent_id: AgentId,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        let body = self.register_body(agent_id, system_prompt)?;
        let client = self.clone();
        io::block_on(async move { client.send_register(agent_id, body).await })?
    }

    fn register_body(&self, agent_id: AgentId, system_prompt: &str) -> Result<Bytes, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        encode(
            "the registration",
            &RegisterRequest {
                agent_id,
                timestamp: wire::iso_millis(Utc::now()),
                system_prompt,
            },
        )
    }

    async fn send_register(&self, agent_id: AgentId, body: Bytes) -> Result<Trace, Error> {
        const ENDPOINT: &str = "/register-agent-run";
        let response: RegisterResponse =
            transport::post(&self.inner.http, &self.inner.config, ENDPOINT, body).await?;
        let registered_at = response.timestamp.to_utc().ok_or_else(|| Error::Decode {
            endpoint: ENDPOINT,
            message: "`timestamp` is not an ISO 8601 time".into(),
            snippet: String::new(),
        })?;
        Ok(trace::Trace::new(
            TraceId::from_uuid(response.trace_id),
            agent_id,
            registered_at,
        ))
    }

    pub(crate) fn same_as(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

pub(crate) fn encode(what: &'static str, value: &impl Serialize) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Encode {
            what,
            message: e.to_string(),
        })
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
