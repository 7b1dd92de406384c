//! Tests that drive a program from outside the project (Chromium and chromedriver, Python's
//! `mcp` package, `redis-server`) find it, or do not run and say so where the person running
//! the tests sees it. Under CI (`CI` set) a missing program fails the test instead.
//!
//! Shared by every crate's tests through `#[path]`:
//!
//! ```ignore
//! #[path = "../../tests/programs/mod.rs"]
//! mod programs;
//!
//! let Some(redis) = programs::require("fleet::even_load", programs::REDIS, find_redis()) else {
//!     return;
//! };
//! ```

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// An outside program: what it is, and how to install it.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// What the tests need, as a person would name it.
    pub needs: &'static str,
    /// The command that installs it on Debian (what `.ci/run` does).
    pub install: &'static str,
}

/// Debian's Chromium and its chromedriver.
pub const CHROMIUM: Program = Program {
    needs: "chromium and chromedriver",
    install: "apt-get install chromium chromium-driver",
};

/// The official MCP Python SDK, importable by `python3` (or `FABRAIX_MCP_PYTHON`).
pub const PYTHON_MCP: Program = Program {
    needs: "python3 with the MCP Python SDK",
    install: "python3 -m pip install 'mcp==2.3.0'",
};

/// A Redis server binary on `PATH` (or named by `FABRAIX_REDIS_SERVER`).
pub const REDIS: Program = Program {
    needs: "redis-server",
    install: "apt-get install redis-server",
};

/// Whether this run is CI's, where every program must be present.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `found` (the program's handle, or why it is missing), for `test`. When it is missing:
/// under CI the test fails with why; otherwise it is skipped, with one line on the
/// terminal naming the test, what it needs and how to install it. Callers return at once
/// on `None`.
pub fn require<T>(test: &str, program: Program, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(handle) => Some(handle),
        Err(why) if under_ci() => panic!(
            "{test} needs {} ({why}); install it with `{}`",
            program.needs, program.install
        ),
        Err(why) => {
            skipped(test, program, &why);
            None
        }
    }
}

/// Says that `test` did not run. Written to the process's own stderr, not through
/// `eprintln!`: the test harness captures the macros' output of a passing test, and this
/// line must be seen.
pub fn skipped(test: &str, program: Program, why: &str) {
    let line = format!(
        "SKIPPED {test}: needs {} ({why}); install with `{}`; under CI (`CI` set) this fails\n",
        program.needs, program.install
    );
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}

/// `name` on `PATH` (or at the path in the environment variable `override_var`, when set).
pub fn find_on_path(name: &str, override_var: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(override_var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{override_var} names {}, not a file",
                path.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("`{name}` is not on PATH"))
}
