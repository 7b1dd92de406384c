//! A scripted HTTP/1.1 server on a raw loopback socket, for the misbehaviour the
//! MockServer cannot produce: a TCP reset, a body cut short, a body larger than the
//! client reads, a chunked body that never ends, and any header or reason phrase at all.
//!
//! Each connection carries one request (every scripted answer says `Connection: close`).
//! The server counts the requests it read in full, so a test can assert how many attempts
//! a client made.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a held connection waits for the client before giving up on it.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// One request the server read.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Its position among the server's requests, from 0.
    pub index: usize,
    /// The request line and headers, as sent.
    pub head: String,
    /// The body, as sent.
    pub body: Vec<u8>,
    /// When the server finished reading it.
    pub received_at: Instant,
}

impl RawRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// The request path, e.g. `/v1/event`.
    pub fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Writes these bytes, then closes its side and waits for the client to close.
    Bytes(Vec<u8>),
    /// Closes with a TCP reset before answering anything.
    Reset,
    /// Writes these bytes, then holds the connection open until the client closes it.
    BytesThenHold(Vec<u8>),
    /// Answers 200 with a chunked body that grows to `total` bytes and never ends: the
    /// last chunk never comes, and the connection is held until the client closes it.
    EndlessChunked { total: usize },
}

type Script = dyn Fn(&RawRequest) -> Reply + Send + Sync;

#[derive(Default)]
struct Log {
    requests: Vec<RawRequest>,
    /// Connections the client closed while the server held them (or wrote to them).
    closed_by_client: usize,
    /// Body bytes written by `EndlessChunked` answers, per answer.
    chunked_written: Vec<usize>,
}

struct Shared {
    script: Box<Script>,
    log: Mutex<Log>,
    changed: Condvar,
    stopping: AtomicBool,
}

impl Shared {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Log)) {
        f(&mut self.log());
        self.changed.notify_all();
    }
}

/// A scripted server on `127.0.0.1` and a free port. Stops accepting when dropped.
pub struct RawServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RawServer {
    /// Starts the server; `script` decides the answer to each request.
    pub fn start(script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::Builder::new()
            .name("raw-http-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accepting.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = accepting.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
            .unwrap();
        Self { addr, shared }
    }

    /// The base URL, e.g. `http://127.0.0.1:41235/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests read in full so far.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.shared.log().requests.clone()
    }

    /// How many connections the client closed while the server held or wrote to them.
    pub fn closed_by_client(&self) -> usize {
        self.shared.log().closed_by_client
    }

    /// Body bytes written by each `EndlessChunked` answer.
    pub fn chunked_written(&self) -> Vec<usize> {
        self.shared.log().chunked_written.clone()
    }

    /// Waits until the client has closed `count` held connections, up to `timeout`.
    pub fn wait_closed_by_client(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.log();
        loop {
            if log.closed_by_client >= count {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = match self.shared.changed.wait_timeout(log, left) {
                Ok((log, _)) => log,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// A complete answer: status line, the given headers, `Content-Length`, `Connection: close`.
pub fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status_line}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A 200 with a JSON body.
pub fn ok_json(body: &str) -> Vec<u8> {
    response(
        "200 OK",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// The success body each endpoint documents, for the request's path.
pub fn documented_success(request: &RawRequest) -> Vec<u8> {
    let now = chrono::Utc::now();
    let body = match request.path() {
        "/v1/register-agent-run" => format!(
            r#"{{"trace_id":"{}","timestamp":"{}"}}"#,
            uuid::Uuid::new_v4(),
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        ),
        "/v1/check" => format!(
            r#"{{"is_safe":true,"reasoning":"fine","action_check_id":"chk_1","timestamp":{}}}"#,
            now.timestamp_millis() as f64 / 1000.0
        ),
        _ => format!(
            r#"{{"event_id":"{}","timestamp":{}}}"#,
            uuid::Uuid::new_v4(),
            now.timestamp_millis() as f64 / 1000.0
        ),
    };
    ok_json(&body)
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(HOLD_LIMIT));
    let _ = stream.set_write_timeout(Some(HOLD_LIMIT));
    let Some((head, length)) = read_head(&mut stream) else {
        return;
    };
    // Read all of the body but its last byte, and wait until that byte has arrived: a
    // `Reset` then closes with unread data, which makes the kernel send a reset.
    let mut body = vec![0u8; length.saturating_sub(1)];
    if stream.read_exact(&mut body).is_err() {
        return;
    }
    if length > 0 {
        let mut last = [0u8; 1];
        match stream.peek(&mut last) {
            Ok(1) => body.push(last[0]),
            _ => return,
        }
    }
    let request = {
        let mut log = shared.log();
        let request = RawRequest {
            index: log.requests.len(),
            head,
            body,
            received_at: Instant::now(),
        };
        log.requests.push(request.clone());
        request
    };
    shared.changed.notify_all();
    let reply = (shared.script)(&request);
    if matches!(reply, Reply::Reset) {
        // Dropped with the body's last byte unread: a reset, not an orderly close.
        return;
    }
    if length > 0 {
        let mut last = [0u8; 1];
        let _ = stream.read(&mut last);
    }
    match reply {
        Reply::Reset => {}
        Reply::Bytes(bytes) => {
            if stream.write_all(&bytes).is_ok() {
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Write);
                drain(&mut stream);
            }
        }
        Reply::BytesThenHold(bytes) => {
            let written = stream.write_all(&bytes).is_ok();
            if !written || hold(&mut stream) {
                shared.update(|log| log.closed_by_client += 1);
            }
        }
        Reply::EndlessChunked { total } => {
            let (written, closed) = endless_chunked(&mut stream, total);
            shared.update(|log| {
                log.chunked_written.push(written);
                if closed {
                    log.closed_by_client += 1;
                }
            });
        }
    }
}

/// Reads the head one byte at a time, so that none of the body is read with it; answers
/// the head and the `Content-Length`.
fn read_head(stream: &mut TcpStream) -> Option<(String, usize)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    Some((head, length))
}

/// Reads until the client closes; answers whether it did (rather than the hold timing out).
fn hold(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
    }
}

/// Writes a chunked 200 of `total` body bytes with no last chunk, then holds. Answers the
/// body bytes written and whether the client closed the connection.
fn endless_chunked(stream: &mut TcpStream, total: usize) -> (usize, bool) {
    const CHUNK: usize = 16 * 1024;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return (0, true);
    }
    let data = vec![b' '; CHUNK];
    let mut written = 0;
    while written < total {
        let mut frame = format!("{CHUNK:x}\r\n").into_bytes();
        frame.extend_from_slice(&data);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).is_err() {
            return (written, true);
        }
        written += CHUNK;
    }
    (written, hold(stream))
}
