//! `fabraix-dev`: the Fabraix API on your laptop, with a live web page of every run, event
//! and verdict.
//!
//! It serves the API through [`fabraix::testing::MockServer`] (the same validation and the
//! same answers as the SDK's tests get) on `127.0.0.1`, and, on the same port, a page and
//! the JSON behind it. See the crate's README for the command line and the JSON.

mod assets;
mod cli;
mod response;
mod site;
mod view;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use fabraix::testing::MockServer;

use crate::cli::{Command, Options};
use crate::site::Site;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("fabraix-dev: {error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => print(cli::HELP),
        Command::Version => print(&format!("fabraix-dev {}\n", env!("CARGO_PKG_VERSION"))),
        Command::PrintEnv(options) => print(&cli::env_lines(options.port, &options.api_key)),
        Command::Serve(options) => return serve(options),
    }
    ExitCode::SUCCESS
}

/// Writes to stdout; a closed stdout is no reason to stop serving.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn serve(options: Options) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fabraix-dev: could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fabraix-dev: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let site = Arc::new(Site::new(&options));
    let handler_site = site.clone();
    let server = MockServer::builder()
        .api_key(options.api_key.as_str())
        .port(options.port)
        // Pages elsewhere reach loopback through DNS rebinding: answer only to this machine.
        .local_host_only()
        .keep_runs(options.keep_runs)
        .rate_limit(options.rate_limit.clone())
        .fallback(move |request| site::answer(handler_site.clone(), request))
        .start()
        .await
        .map_err(|error| {
            format!(
                "could not serve on 127.0.0.1:{} ({error}); choose another port with `--port N`, \
                 or `--port 0` for a free one",
                options.port
            )
        })?;
    for (name, reasoning) in &options.blocks {
        server.block_action(name.as_str(), reasoning.as_str());
    }
    let server = Arc::new(server);
    site.attach(&server);

    let port = server.addr().port();
    let lines = cli::env_lines(port, &options.api_key);
    print(&format!("{lines}http://127.0.0.1:{port}/\n"));
    let env_file = match &options.env_file {
        Some(path) => Some(EnvFile::write(path, &lines)?),
        None => None,
    };
    describe(&options, port);

    stopped().await;
    drop(env_file);
    Ok(())
}

/// Tells a person, on stderr, what is being served.
fn describe(options: &Options, port: u16) {
    let mut note = format!(
        "fabraix-dev: serving the Fabraix API at http://127.0.0.1:{port}/v1 and the page at \
         http://127.0.0.1:{port}/ (keeping the last {} runs; Ctrl-C stops)",
        options.keep_runs
    );
    for (name, reasoning) in &options.blocks {
        note.push_str(&format!("\nfabraix-dev: blocking `{name}`: {reasoning}"));
    }
    if !options.rate_limit.is_off() {
        note.push_str(&format!(
            "\nfabraix-dev: answering 429 past {}",
            options.rate_limit
        ));
    }
    if options.port != 0 {
        note.push_str("\nfabraix-dev: in another shell: export $(fabraix-dev --print-env");
        if options.port != cli::DEFAULT_PORT {
            note.push_str(&format!(" --port {port}"));
        }
        if options.api_key != cli::DEFAULT_API_KEY {
            note.push_str(" --api-key …");
        }
        note.push(')');
    }
    eprintln!("{note}");
}

/// Resolves on Ctrl-C (and, on Unix, on SIGTERM).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The two lines in a file, for scripts; removed when the server stops.
struct EnvFile {
    path: PathBuf,
}

impl EnvFile {
    /// Writes the whole file at once (a reader never sees half of it), readable only by
    /// its owner since it holds the key.
    fn write(path: &Path, lines: &str) -> Result<Self, String> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let failed = |error: std::io::Error| {
            format!("could not write the env file {}: {error}", path.display())
        };
        let mut file = owner_only().open(&partial).map_err(failed)?;
        file.write_all(lines.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        std::fs::rename(&partial, path).map_err(failed)?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
