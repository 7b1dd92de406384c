//! The command line: what `fabraix-dev` was asked to do.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use fabraix::RateLimit;

/// The port served unless `--port` says otherwise: unassigned by IANA and not a common
/// development server's default.
pub const DEFAULT_PORT: u16 = 8417;

/// The key the API accepts unless `--api-key` says otherwise.
pub const DEFAULT_API_KEY: &str = "fabraix-dev-key";

/// How many runs are kept unless `--keep-runs` says otherwise.
pub const DEFAULT_KEEP_RUNS: usize = 500;

pub const HELP: &str = "\
fabraix-dev: the Fabraix API on your laptop, with a live page of every run, event and verdict

USAGE:
    fabraix-dev [OPTIONS]

Serves the Fabraix API (/v1) and a page (/) on 127.0.0.1. Prints, first thing on stdout,
    FABRAIX_BASE_URL=http://127.0.0.1:<port>/v1
    FABRAIX_API_KEY=<key>
then the page's URL. In another shell, point an agent at it with
    export $(fabraix-dev --print-env)

OPTIONS:
    --port N              port on 127.0.0.1 (default 8417; 0 picks a free one)
    --api-key KEY         the key the API accepts (default fabraix-dev-key)
    --block NAME=REASON   /check answers is_safe: false with REASON for the action NAME
                          (repeatable)
    --keep-runs N         remember only the last N runs (default 500); older runs'
                          trace ids become unknown (404)
    --rate-limit SPEC     answer 429 past these sliding windows, written as
                          FABRAIX_RATE_LIMIT is: 60/min,1000/h, 10/s, 30/6s or off
                          (default off)
    --env-file PATH       also write the two lines to PATH once serving (removed on exit)
    --print-env           print the two lines for these options and exit
    -h, --help            print this help
    -V, --version         print the version
";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve until stopped.
    Serve(Options),
    /// Print the two environment lines and exit.
    PrintEnv(Options),
    Help,
    Version,
}

/// How to serve.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    pub port: u16,
    pub api_key: String,
    /// `(action name, reasoning)`, in the order given.
    pub blocks: Vec<(String, String)>,
    pub keep_runs: usize,
    pub rate_limit: RateLimit,
    pub env_file: Option<PathBuf>,
}

/// Everything but the key, which is printed only where the user asked for it.
impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("port", &self.port)
            .field("api_key", &"[redacted]")
            .field("blocks", &self.blocks)
            .field("keep_runs", &self.keep_runs)
            .field("rate_limit", &self.rate_limit.to_string())
            .field("env_file", &self.env_file)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            api_key: DEFAULT_API_KEY.into(),
            blocks: Vec::new(),
            keep_runs: DEFAULT_KEEP_RUNS,
            rate_limit: RateLimit::off(),
            env_file: None,
        }
    }
}

/// A command line that cannot be followed; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Reads the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options::default();
    let mut print_env = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_str().ok_or_else(|| {
            usage(format!(
                "unexpected argument {arg:?}; see `fabraix-dev --help`"
            ))
        })?;
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(OsString::from(value))),
            _ => (text, None),
        };
        let mut value = || -> Result<OsString, UsageError> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| usage(format!("`{flag}` needs a value")))
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--print-env" if inline.is_none() => print_env = true,
            "--port" => options.port = port(&text_value(flag, value()?)?)?,
            "--api-key" => options.api_key = api_key(&text_value(flag, value()?)?)?,
            "--block" => {
                let rule = block(&text_value(flag, value()?)?)?;
                options.blocks.retain(|(name, _)| *name != rule.0);
                options.blocks.push(rule);
            }
            "--keep-runs" => options.keep_runs = keep_runs(&text_value(flag, value()?)?)?,
            "--rate-limit" => options.rate_limit = rate_limit(&text_value(flag, value()?)?)?,
            "--env-file" => {
                let path = value()?;
                if path.is_empty() {
                    return Err(usage("`--env-file` needs a path"));
                }
                options.env_file = Some(PathBuf::from(path));
            }
            _ => {
                return Err(usage(format!(
                    "unknown argument `{text}`; expected one of `--port`, `--api-key`, `--block`, \
                     `--keep-runs`, `--rate-limit`, `--env-file`, `--print-env`, `--help`, \
                     `--version`"
                )));
            }
        }
    }
    if print_env {
        if options.port == 0 {
            return Err(usage(
                "`--print-env` needs the port fabraix-dev serves on; with `--port 0`, read the \
                 lines it prints or use `--env-file PATH`",
            ));
        }
        return Ok(Command::PrintEnv(options));
    }
    Ok(Command::Serve(options))
}

fn text_value(flag: &str, value: OsString) -> Result<String, UsageError> {
    value
        .into_string()
        .map_err(|v| usage(format!("`{flag}` needs text, not {v:?}")))
}

fn port(text: &str) -> Result<u16, UsageError> {
    text.parse().map_err(|_| {
        usage(format!(
            "`--port {text}` is not a port; expected a number from 0 to 65535 (0 picks a free one)"
        ))
    })
}

/// Keys are printed for a shell to evaluate: only characters that need no quoting.
fn api_key(text: &str) -> Result<String, UsageError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._~+/=-".contains(c);
    if text.is_empty() || text.len() > 256 || !text.chars().all(allowed) {
        return Err(usage(
            "`--api-key` takes 1 to 256 letters, digits or `._~+/=-` (so that a shell can \
             evaluate the line that prints it)",
        ));
    }
    Ok(text.to_owned())
}

fn block(text: &str) -> Result<(String, String), UsageError> {
    let (name, reason) = match text.split_once('=') {
        Some((name, reason)) => (name.trim(), reason),
        None => (text.trim(), ""),
    };
    if name.is_empty() {
        return Err(usage(
            "`--block` needs an action name: `--block NAME=REASON`, e.g. \
             `--block delete_account=\"Deleting accounts needs a human.\"`",
        ));
    }
    let reason = if reason.trim().is_empty() {
        format!("Blocked by fabraix-dev (`--block {name}`).")
    } else {
        reason.to_owned()
    };
    Ok((name.to_owned(), reason))
}

fn keep_runs(text: &str) -> Result<usize, UsageError> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(usage(format!(
            "`--keep-runs {text}` is not a count of runs; expected a number of at least 1"
        ))),
    }
}

/// Read as `FABRAIX_RATE_LIMIT` is.
fn rate_limit(text: &str) -> Result<RateLimit, UsageError> {
    text.parse()
        .map_err(|error: fabraix::Error| usage(format!("`--rate-limit {text}`: {error}")))
}

/// The two lines a shell evaluates to point an agent at `port`.
pub fn env_lines(port: u16, api_key: &str) -> String {
    format!("FABRAIX_BASE_URL=http://127.0.0.1:{port}/v1\nFABRAIX_API_KEY={api_key}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
        parse(words.iter().map(OsString::from))
    }

    fn serve(words: &[&str]) -> Options {
        match parse_words(words) {
            Ok(Command::Serve(options)) => options,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn no_arguments_serve_the_defaults() {
        assert_eq!(serve(&[]), Options::default());
        assert_eq!(Options::default().port, 8417);
    }

    #[test]
    fn every_option_in_both_spellings() {
        let options = serve(&[
            "--port",
            "0",
            "--api-key=k-1",
            "--block",
            "delete_account=Needs a human.",
            "--block=wire_money",
            "--keep-runs",
            "7",
            "--rate-limit=60/min,1000/h",
            "--env-file=dev.env",
        ]);
        assert_eq!(options.port, 0);
        assert_eq!(options.api_key, "k-1");
        assert_eq!(
            options.blocks,
            [
                ("delete_account".to_owned(), "Needs a human.".to_owned()),
                (
                    "wire_money".to_owned(),
                    "Blocked by fabraix-dev (`--block wire_money`).".to_owned()
                ),
            ]
        );
        assert_eq!(options.keep_runs, 7);
        assert_eq!(options.rate_limit, RateLimit::development());
        assert_eq!(options.env_file, Some(PathBuf::from("dev.env")));
    }

    #[test]
    fn a_reason_keeps_its_equals_signs_and_a_later_block_of_one_name_wins() {
        let options = serve(&["--block", "a=x=y", "--block", "a=z"]);
        assert_eq!(options.blocks, [("a".to_owned(), "z".to_owned())]);
        let options = serve(&["--block", "a=x=y"]);
        assert_eq!(options.blocks, [("a".to_owned(), "x=y".to_owned())]);
    }

    #[test]
    fn print_env_needs_a_fixed_port() {
        assert!(matches!(
            parse_words(&["--print-env", "--port", "9000"]),
            Ok(Command::PrintEnv(Options { port: 9000, .. }))
        ));
        let error = parse_words(&["--print-env", "--port", "0"]).unwrap_err();
        assert!(error.to_string().contains("--env-file"), "{error}");
    }

    #[test]
    fn bad_arguments_say_what_to_write() {
        for (words, says) in [
            (&["--port", "http"][..], "expected a number from 0 to 65535"),
            (&["--port", "70000"], "expected a number"),
            (&["--port"], "`--port` needs a value"),
            (&["--api-key", "has space"], "`--api-key` takes"),
            (&["--api-key", "$(reboot)"], "`--api-key` takes"),
            (&["--api-key="], "`--api-key` takes"),
            (&["--block", "=reason"], "needs an action name"),
            (&["--keep-runs", "0"], "at least 1"),
            (&["--rate-limit", "60 per minute"], "is not `N/[K]UNIT`"),
            (&["--env-file="], "needs a path"),
            (&["--verbose"], "unknown argument `--verbose`"),
            (&["serve"], "unknown argument `serve`"),
            (&["--print-env=yes"], "unknown argument `--print-env=yes`"),
        ] {
            let error = parse_words(words).unwrap_err().to_string();
            assert!(error.contains(says), "{words:?}: {error}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_words(&["--port", "1", "-h"]), Ok(Command::Help));
        assert_eq!(parse_words(&["--version"]), Ok(Command::Version));
        assert!(HELP.contains("--block NAME=REASON"));
    }

    #[test]
    fn debug_output_leaves_the_key_out() {
        let options = serve(&["--api-key", "sekrit-123"]);
        let debug = format!("{:?}", Command::Serve(options));
        assert!(!debug.contains("sekrit-123"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn env_lines_are_the_two_documented_lines() {
        assert_eq!(
            env_lines(8417, "k"),
            "FABRAIX_BASE_URL=http://127.0.0.1:8417/v1\nFABRAIX_API_KEY=k\n"
        );
    }
}
