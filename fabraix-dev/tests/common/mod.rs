//! Starting the real `fabraix-dev` binary, and an agent that is not built from this project
//! (`agent.py`, Python's urllib) to drive it.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long a test waits for anything at all before it fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `fabraix-dev`, stopped (by its own process handle) when dropped.
pub struct DevServer {
    child: Child,
    pub port: u16,
    pub base_url: String,
    pub api_key: String,
    pub page_url: String,
    /// The first three lines it printed, as printed.
    pub lines: [String; 3],
}

impl DevServer {
    /// Starts `fabraix-dev --port 0` with `args` and reads the lines it prints first.
    pub fn start(args: &[&str]) -> DevServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fabraix-dev"))
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fabraix-dev starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut first = Vec::new();
            for _ in 0..3 {
                match lines.next() {
                    Some(Ok(line)) => first.push(line),
                    _ => break,
                }
            }
            let _ = tx.send(first);
            // Keep reading so that the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(WAIT) {
            Ok(first) if first.len() == 3 => first,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "fabraix-dev printed {other:?}; stderr: {}",
                    read_all(stderr)
                );
            }
        };
        drain(stderr);
        let base_url = first[0]
            .strip_prefix("FABRAIX_BASE_URL=")
            .unwrap_or_else(|| panic!("first line: {:?}", first[0]))
            .to_owned();
        let api_key = first[1]
            .strip_prefix("FABRAIX_API_KEY=")
            .unwrap_or_else(|| panic!("second line: {:?}", first[1]))
            .to_owned();
        let port = base_url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix("/v1"))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("base URL: {base_url}"));
        DevServer {
            child,
            port,
            base_url,
            api_key,
            page_url: first[2].clone(),
            lines: [first[0].clone(), first[1].clone(), first[2].clone()],
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Runs `agent.py` with `python` and `plan` against this server; answers what it
    /// printed.
    pub fn run_agent(&self, python: &Path, plan: &Value) -> Value {
        python_agent(python, &self.base_url, &self.api_key, &plan.to_string())
    }
}

impl DevServer {
    /// Asks it to stop (SIGTERM, to its own process id) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        wait_exit(&mut self.child)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/agent.py` (Python's urllib, no code of this project) with `python` and
/// `plan` (JSON text: the agent sends each content's keys in the order written there).
pub fn python_agent(python: &Path, base_url: &str, api_key: &str, plan: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent.py");
    let output = Command::new(python)
        .arg(script)
        .arg(plan)
        .env("FABRAIX_BASE_URL", base_url)
        .env("FABRAIX_API_KEY", api_key)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "agent.py failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("agent.py prints JSON")
}

/// Waits (bounded by [`WAIT`]) for a child to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(mut stream: ChildStderr) -> String {
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn drain(stream: ChildStderr) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut BufReader::new(stream), &mut std::io::sink());
    });
}

/// Asks `url` with a plain HTTP client (reqwest); answers the status and the parsed body.
pub async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}
