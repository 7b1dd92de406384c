//! `fabraix-spool`: sends what a spool holds and exits, for cron or after a crash loop.
//!
//! ```text
//! fabraix-spool drain [--dir DIR] [--timeout SECONDS]
//! ```
//!
//! The key, base URL and rate limit come from the environment, as for any client
//! (`FABRAIX_API_KEY`, `FABRAIX_BASE_URL`, `FABRAIX_RATE_LIMIT`); the folder from `--dir`
//! or `FABRAIX_SPOOL_DIR`. Only the key's own files are sent, and only those whose writer
//! is gone: a live agent's file is left to it. Exit status: 0 when everything found was
//! sent (or refused by the API, which is final), 1 when some is left (the timeout ran out,
//! or the API was unreachable; run it again), 2 for a usage or configuration error.
//!
//! Built with the `spool` feature: `cargo install fabraix --features spool --bin fabraix-spool`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: fabraix-spool drain [--dir DIR] [--timeout SECONDS]

Sends the events left in a fabraix spool folder (FABRAIX_SPOOL_DIR, or --dir) by
processes that are gone, then exits. The key, base URL and rate limit come from
FABRAIX_API_KEY, FABRAIX_BASE_URL and FABRAIX_RATE_LIMIT. --timeout defaults to 300.
Exit status: 0 all sent, 1 some left (run it again), 2 usage or configuration error.";

struct Args {
    dir: Option<String>,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut rest = args.iter();
    match rest.next().map(String::as_str) {
        Some("drain") => {}
        Some("-h" | "--help" | "help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command `{other}`")),
    }
    let mut parsed = Args {
        dir: None,
        timeout: Duration::from_secs(300),
    };
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match arg.as_str() {
            "--dir" => parsed.dir = Some(value("--dir")?),
            "--timeout" => {
                let text = value("--timeout")?;
                let seconds: f64 = text
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| {
                        format!("`--timeout` takes a number of seconds, got `{text}`")
                    })?;
                parsed.timeout = Duration::from_secs_f64(seconds.min(1e9));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("fabraix-spool: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = fabraix::ClientBuilder::from_env().shutdown_timeout(args.timeout);
    match args.dir.or_else(|| std::env::var("FABRAIX_SPOOL_DIR").ok()) {
        Some(dir) if !dir.trim().is_empty() => builder = builder.spool_dir(dir),
        _ => {
            eprintln!("fabraix-spool: no spool folder: pass --dir or set FABRAIX_SPOOL_DIR");
            return ExitCode::from(2);
        }
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("fabraix-spool: {error}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    // As at a process's exit: the events may use the key's whole budget.
    let guard = match fabraix::init(client.clone()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("fabraix-spool: {error}");
            return ExitCode::from(2);
        }
    };
    let drained = guard.flush();
    let stats = client.stats().events;
    println!(
        "found {} events; sent {}, refused {}, dropped by the caps {}, unreadable {}; {} left; {:.1} s",
        stats.recovered,
        stats.sent,
        stats.failed,
        stats.spool_dropped,
        stats.spool_damaged,
        stats.in_queue,
        started.elapsed().as_secs_f64()
    );
    if drained && stats.in_queue == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
