//! A real `redis-server` for tests: started on a free loopback port with nothing written
//! to disk, killed and restarted on the same port on demand, stopped when dropped.
//!
//! Included with `#[path]` by the runtime's unit tests and by the root's integration
//! tests (it brings `tests/programs` along):
//!
//! ```ignore
//! #[path = "../../tests/redis_server/mod.rs"]
//! mod redis_server;
//!
//! let Some(redis) = redis_server::RedisServer::start("fleet::even_load") else {
//!     return; // skipped, and said so (a failure under CI)
//! };
//! let url = redis.url();
//! ```

#![allow(dead_code)]

#[path = "../programs/mod.rs"]
pub mod programs;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `redis-server` child process on `127.0.0.1`.
pub struct RedisServer {
    program: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// A server for `test`, or `None` when `redis-server` is not installed (the test is
    /// skipped with a line saying so; under CI it fails instead).
    pub fn start(test: &str) -> Option<Self> {
        let found = programs::find_on_path("redis-server", "FABRAIX_REDIS_SERVER");
        let program = programs::require(test, programs::REDIS, found)?;
        let port = free_port();
        let mut server = Self {
            program,
            port,
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL): connections drop, nothing is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is answered, as a
    /// Redis that is overloaded or cut off behaves.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running server");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(status.success(), "kill {signal} {}: {status}", child.id());
    }

    /// Starts a fresh, empty server on the same port (killing the running one, if any),
    /// and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Whether the server answers `PING` right now.
    pub fn answers(&self) -> bool {
        ping(self.port).is_ok()
    }

    fn spawn(&mut self) {
        let dir = std::env::temp_dir();
        let child = Command::new(&self.program)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", self.program.display()));
        self.child = Some(child);
        let started = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            match ping(self.port) {
                Ok(()) => return,
                Err(why) if started.elapsed() > READY_WITHIN => {
                    panic!(
                        "redis-server on port {} not ready within {READY_WITHIN:?}: {why}",
                        self.port
                    )
                }
                Err(_) => {
                    if let Some(status) = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten())
                    {
                        panic!("redis-server on port {} exited: {status}", self.port);
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen server too.
        self.kill();
    }
}

/// A port nobody listens on now (the OS's pick).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// `PING` in RESP, answered `+PONG`.
fn ping(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).map_err(|e| e.to_string())?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&answer)))
    }
}
