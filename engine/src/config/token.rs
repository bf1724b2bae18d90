//! The relay's OAuth 2.0 access token for `[relay] auth = "xoauth2"`: where it comes from
//! (`token_file`, `token_env` or `token_command`) and how it is fetched. The token is read
//! when the campaign is loaded and again whenever the relay refuses it (and, from a command,
//! when it is older than `token_lifetime`). A command runs without a shell, with its output
//! and time bounded; its stderr is shown when it fails, its stdout (the token) never.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret as _, SecretString};

/// Bytes a token command may print on stdout (Microsoft's tokens are a few KiB).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;
/// Bytes of a failed command's stderr kept for the error message.
const MAX_STDERR_BYTES: u64 = 4 * 1024;
/// Characters of stderr shown in an error.
const SHOWN_STDERR_CHARS: usize = 500;
/// How often a running command is checked for its exit.
const POLL: Duration = Duration::from_millis(10);

/// Where the relay's access token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `token_file`: a file holding the token (resolved path), re-read on refresh.
    File(PathBuf),
    /// `token_env`: an environment variable holding the token, re-read on refresh.
    Env(String),
    /// `token_command`: a program and its arguments (run without a shell) that prints the
    /// token on stdout, within `timeout`.
    Command {
        /// The program, then its arguments (never empty).
        argv: Vec<String>,
        /// How long it may run before it is killed.
        timeout: Duration,
    },
}

/// Why no token could be had. No variant ever holds the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `token_file` could not be read.
    #[error("relay.token_file: cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// `token_env` names a variable that is not set, empty or not UTF-8.
    #[error("relay.token_env: environment variable {var} is not set, empty or not valid UTF-8")]
    Env {
        /// The variable.
        var: String,
    },
    /// `token_command` could not be started.
    #[error("relay.token_command: cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// `token_command` ran too long and was killed.
    #[error("relay.token_command: {program} did not finish within {}; it was stopped", humantime::format_duration(*limit))]
    Timeout {
        /// The program.
        program: String,
        /// Its time limit.
        limit: Duration,
    },
    /// `token_command` failed (non-zero exit or a signal).
    #[error(
        "relay.token_command: {program} failed ({status}){}",
        shown_stderr(stderr)
    )]
    Failed {
        /// The program.
        program: String,
        /// Its exit status, as the system words it.
        status: String,
        /// The start of what it wrote on stderr (the token, if it was there, removed).
        stderr: String,
    },
    /// `token_command` printed more than a token can be.
    #[error("relay.token_command: {program} printed more than {limit} bytes on stdout")]
    TooLong {
        /// The program.
        program: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The source gave nothing.
    #[error("{key}: the token is empty")]
    Empty {
        /// `relay.token_file`, `relay.token_env` or `relay.token_command`.
        key: &'static str,
    },
    /// The token holds a space, a control character or non-ASCII: not an access token.
    #[error(
        "{key}: the token holds a space, a control character or non-ASCII text, which an \
         OAuth 2.0 access token never does"
    )]
    BadToken {
        /// `relay.token_file`, `relay.token_env` or `relay.token_command`.
        key: &'static str,
    },
    /// The fetch was lost (its task panicked or the runtime is shutting down).
    #[error("{key}: fetching the token stopped unexpectedly")]
    Lost {
        /// `relay.token_file`, `relay.token_env` or `relay.token_command`.
        key: &'static str,
    },
}

/// `": stderr: …"` when the command wrote something there.
fn shown_stderr(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl TokenSource {
    /// The TOML key this source was configured with.
    pub fn key(&self) -> &'static str {
        match self {
            TokenSource::File(_) => "relay.token_file",
            TokenSource::Env(_) => "relay.token_env",
            TokenSource::Command { .. } => "relay.token_command",
        }
    }

    /// Fetches the token now: reads the file or the variable, or runs the command. Blocks
    /// (a command up to its timeout): async callers run it on a blocking thread.
    pub fn fetch(&self) -> Result<SecretString, TokenError> {
        let raw = match self {
            TokenSource::File(path) => {
                super::secret_file::warn_if_loose(self.key(), path);
                std::fs::read_to_string(path).map_err(|source| TokenError::File {
                    path: path.clone(),
                    source,
                })?
            }
            TokenSource::Env(var) => {
                std::env::var(var).map_err(|_| TokenError::Env { var: var.clone() })?
            }
            TokenSource::Command { argv, timeout } => run_command(argv, *timeout)?,
        };
        checked_token(self.key(), SecretString::from(raw))
    }
}

/// The token without surrounding whitespace; refused when empty or not a bearer token.
fn checked_token(key: &'static str, raw: SecretString) -> Result<SecretString, TokenError> {
    let token = raw.expose_secret().trim();
    if token.is_empty() {
        return Err(TokenError::Empty { key });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::BadToken { key });
    }
    Ok(SecretString::from(token.to_owned()))
}

/// What one of the command's pipes gave: everything (up to the limit), and whether it went
/// past the limit.
type PipeRead = (Vec<u8>, bool);

/// Reads up to `limit` bytes of `pipe` on a thread of its own, sent on `done`.
fn read_pipe(
    pipe: Option<impl std::io::Read + Send + 'static>,
    limit: u64,
    stdout: bool,
    done: mpsc::Sender<(bool, PipeRead)>,
) {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(limit + 1).read_to_end(&mut bytes);
        }
        let over = bytes.len() as u64 > limit;
        bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let _ = done.send((stdout, (bytes, over)));
    });
}

/// Runs `argv` (no shell, stdin empty) for at most `timeout`; its stdout is the token.
fn run_command(argv: &[String], timeout: Duration) -> Result<String, TokenError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(TokenError::Empty {
            key: "relay.token_command",
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TokenError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (done, outputs) = mpsc::channel();
    read_pipe(child.stdout.take(), MAX_TOKEN_BYTES, true, done.clone());
    read_pipe(child.stderr.take(), MAX_STDERR_BYTES, false, done);
    let deadline = Instant::now() + timeout;
    let timed_out = || TokenError::Timeout {
        program: program.clone(),
        limit: timeout,
    };
    let Some(status) = wait_until(&mut child, deadline) else {
        return Err(timed_out());
    };
    let (mut out, mut err) = (None, None);
    while out.is_none() || err.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match outputs.recv_timeout(left) {
            Ok((true, read)) => out = Some(read),
            Ok((false, read)) => err = Some(read),
            // Something the command started keeps its output open.
            Err(_) => return Err(timed_out()),
        }
    }
    let ((stdout, too_long), (stderr, _)) = (out.unwrap_or_default(), err.unwrap_or_default());
    let stdout = SecretString::from(String::from_utf8_lossy(&stdout).into_owned());
    if too_long {
        // Checked first: the command may have died of the pipe closed on it.
        return Err(TokenError::TooLong {
            program: program.clone(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    if !status.success() {
        return Err(TokenError::Failed {
            program: program.clone(),
            status: status.to_string(),
            stderr: stderr_text(&stderr, &stdout),
        });
    }
    Ok(stdout.expose_secret().to_owned())
}

/// Waits for `child` to exit until `deadline`; past it, kills it and gives `None`.
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The start of a failed command's stderr on one line, printable only, with whatever it
/// printed on stdout (a token, perhaps) cut out.
fn stderr_text(stderr: &[u8], stdout: &SecretString) -> String {
    let mut text = String::from_utf8_lossy(stderr).into_owned();
    let printed = stdout.expose_secret().trim();
    if printed.len() >= 8 {
        text = text.replace(printed, "<redacted>");
    }
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(SHOWN_STDERR_CHARS)
        .collect();
    one_line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(script: &str, timeout: Duration) -> TokenSource {
        TokenSource::Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            timeout,
        }
    }

    const LONG: Duration = Duration::from_secs(20);

    #[test]
    fn a_command_prints_the_token() {
        let token = command("echo '  ya29.tok-en_1~/+= '", LONG)
            .fetch()
            .unwrap();
        assert_eq!(token.expose_secret(), "ya29.tok-en_1~/+=");
    }

    #[test]
    fn a_failing_command_shows_its_stderr_but_never_its_stdout() {
        let script = "echo secret-token-123; echo 'no refresh token: secret-token-123' >&2; exit 3";
        let err = command(script, LONG).fetch().unwrap_err().to_string();
        assert!(
            err.starts_with("relay.token_command: sh failed (exit status: 3): "),
            "{err}"
        );
        assert!(err.contains("no refresh token: <redacted>"), "{err}");
        assert!(!err.contains("secret-token-123"), "{err}");
    }

    #[test]
    fn a_command_that_runs_too_long_is_stopped() {
        let err = command("sleep 30", Duration::from_millis(300))
            .fetch()
            .unwrap_err();
        assert!(matches!(err, TokenError::Timeout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "relay.token_command: sh did not finish within 300ms; it was stopped"
        );
    }

    #[test]
    fn a_command_that_prints_too_much_is_refused() {
        let err = command("head -c 200000 /dev/zero | tr '\\0' a", LONG)
            .fetch()
            .unwrap_err();
        assert!(matches!(err, TokenError::TooLong { .. }), "{err}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let source = TokenSource::Command {
            argv: vec!["/nonexistent/get-token".into()],
            timeout: LONG,
        };
        let err = source.fetch().unwrap_err().to_string();
        assert!(
            err.starts_with("relay.token_command: cannot run /nonexistent/get-token: "),
            "{err}"
        );
    }

    #[test]
    fn empty_and_malformed_tokens_are_refused_without_showing_them() {
        let err = command("printf '\\n'", LONG).fetch().unwrap_err();
        assert_eq!(err.to_string(), "relay.token_command: the token is empty");
        let err = command("echo 'two words'", LONG)
            .fetch()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("relay.token_command: the token holds a space"),
            "{err}"
        );
        assert!(!err.contains("two"), "{err}");
    }

    #[test]
    fn a_file_is_read_and_trimmed_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok-1\n").unwrap();
        let source = TokenSource::File(path.clone());
        assert_eq!(source.fetch().unwrap().expose_secret(), "tok-1");
        std::fs::remove_file(&path).unwrap();
        let err = source.fetch().unwrap_err().to_string();
        assert!(err.starts_with("relay.token_file: cannot read "), "{err}");
    }

    #[test]
    fn an_unset_variable_is_named() {
        let source = TokenSource::Env("VOLLEY_TEST_TOKEN_SURELY_UNSET".into());
        assert_eq!(
            source.fetch().unwrap_err().to_string(),
            "relay.token_env: environment variable VOLLEY_TEST_TOKEN_SURELY_UNSET is not set, \
             empty or not valid UTF-8"
        );
    }
}
