//! Everything served outside `/v1`: the page, its assets, and the JSON of the recorded runs
//! (`/api/...`), on the API's own port.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use fabraix::TraceId;
use fabraix::testing::{FallbackRequest, FallbackResponse, MockServer};
use http::header::ORIGIN;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::assets::Asset;
use crate::cli::Options;
use crate::response::{json_error, json_ok, method_not_allowed, text};
use crate::view::{self, Clock};

/// How long `GET /api/changes` waits for a change before answering the same count.
const LONG_POLL: Duration = Duration::from_secs(25);

/// What the page's requests are answered from.
pub struct Site {
    /// Set once the server listens; the handler runs inside the server, so it holds no
    /// strong reference to it.
    server: OnceLock<Weak<MockServer>>,
    clock: Clock,
    /// Static facts for `GET /api/info`, apart from the addresses.
    blocked: Vec<(String, String)>,
    keep_runs: usize,
    rate_limit: String,
}

impl Site {
    pub fn new(options: &Options) -> Self {
        Self {
            server: OnceLock::new(),
            clock: Clock::start(),
            blocked: options.blocks.clone(),
            keep_runs: options.keep_runs,
            rate_limit: options.rate_limit.to_string(),
        }
    }

    /// Starts answering from `server`.
    pub fn attach(&self, server: &Arc<MockServer>) {
        let _ = self.server.set(Arc::downgrade(server));
    }

    fn server(&self) -> Option<Arc<MockServer>> {
        self.server.get().and_then(Weak::upgrade)
    }
}

/// Answers one request outside `/v1`.
pub async fn answer(site: Arc<Site>, request: FallbackRequest) -> FallbackResponse {
    let Some(server) = site.server() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "fabraix-dev is starting\n");
    };
    // The server answers only requests for 127.0.0.1 or localhost on its port (see
    // `MockServerBuilder::local_host_only`): a page elsewhere cannot read the runs.
    let port = server.addr().port();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    match (path.as_str(), &method) {
        ("/", &Method::GET) | ("/index.html", &Method::GET) => Asset::Page.response(),
        ("/app.js", &Method::GET) => Asset::Script.response(),
        ("/app.css", &Method::GET) => Asset::Style.response(),
        ("/favicon.svg", &Method::GET) => Asset::Icon.response(),
        ("/api/info", &Method::GET) => json_ok(&info(&site, &server)),
        ("/api/runs", &Method::GET) => {
            let changes = server.changes();
            let runs = server.with_requests(|requests| view::runs(requests, &site.clock));
            json_ok(&json!({ "changes": changes, "runs": runs }))
        }
        ("/api/runs", &Method::DELETE) => {
            if !same_origin(&request, port) {
                return text(StatusCode::FORBIDDEN, "cross-origin request refused\n");
            }
            server.clear_requests();
            json_ok(&json!({ "changes": server.changes() }))
        }
        ("/api/unattached", &Method::GET) => {
            let changes = server.changes();
            let requests = server.with_requests(|requests| view::unattached(requests, &site.clock));
            json_ok(&json!({ "changes": changes, "requests": requests }))
        }
        ("/api/changes", &Method::GET) => {
            let Some(after) = query_u64(&request, "after") else {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "`after` must be a change count, e.g. /api/changes?after=0",
                );
            };
            let changes = server.wait_for_change(after, LONG_POLL).await;
            json_ok(&json!({ "changes": changes }))
        }
        (path, &Method::GET) if path.starts_with("/api/runs/") => {
            let id = &path["/api/runs/".len()..];
            let Ok(trace) = id.parse::<TraceId>() else {
                return json_error(StatusCode::NOT_FOUND, "no such run: not a trace id");
            };
            let changes = server.changes();
            match server.with_requests(|requests| view::run(requests, trace, &site.clock)) {
                Some(run) => json_ok(&json!({ "changes": changes, "run": run })),
                None => json_error(StatusCode::NOT_FOUND, "no such run (cleared or forgotten?)"),
            }
        }
        (
            "/" | "/index.html" | "/app.js" | "/app.css" | "/favicon.svg" | "/api/info"
            | "/api/unattached" | "/api/changes",
            _,
        ) => method_not_allowed("GET"),
        ("/api/runs", _) => method_not_allowed("GET, DELETE"),
        (path, _) if path.starts_with("/api/runs/") => method_not_allowed("GET"),
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn info(site: &Site, server: &MockServer) -> Value {
    let blocked: Vec<Value> = site
        .blocked
        .iter()
        .map(|(action, reasoning)| json!({ "action": action, "reasoning": reasoning }))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "base_url": server.url(),
        "page_url": format!("http://{}/", server.addr()),
        "blocked": blocked,
        "keep_runs": site.keep_runs,
        "rate_limit": site.rate_limit,
        "rate_limited": server.rate_limited(),
    })
}

/// A request from the page itself (or from no page at all, e.g. curl).
fn same_origin(request: &FallbackRequest, port: u16) -> bool {
    match request.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => {
            origin == format!("http://127.0.0.1:{port}")
                || origin == format!("http://localhost:{port}")
        }
    }
}

fn query_u64(request: &FallbackRequest, name: &str) -> Option<u64> {
    request
        .uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}
