//! Terminal output: logging set-up, progress bars, and the few lines printed to the user.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the binary owns the terminal

use crate::args::LogFormat;
use crate::timings::Timings;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Sets up tracing on standard error. `VOLLEY_LOG` (like `RUST_LOG`) picks the level; the
/// default is `info` when stderr is not a terminal (cron, CI) and `warn` on a terminal, where
/// the progress bar tells the story.
/// With `timings`, every `volley` span is also timed (see `timings.rs`), whatever the log
/// level.
pub(crate) fn init_logging(format: LogFormat, timings: Option<Timings>) {
    let terminal = std::io::stderr().is_terminal();
    // PostgreSQL's notices ("relation … already exists, skipping" on every migration check)
    // are the server talking to itself: warnings and worse only.
    let default = if terminal {
        "warn"
    } else {
        "info,sqlx::postgres::notice=warn"
    };
    let filter = EnvFilter::try_from_env("VOLLEY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: log files and collectors get plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.with_target(false).boxed(),
    };
    // Volley's spans are at debug level at most. The hint keeps the `log` records of
    // dependencies (sled logs at trace level inside every store write) from being forwarded
    // to tracing only to be dropped, which would make a timed run slower than an untimed one.
    let timings = timings.map(|t| {
        t.with_filter(
            filter_fn(|meta| meta.is_span() && meta.target().starts_with("volley"))
                .with_max_level_hint(LevelFilter::DEBUG),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(timings)
        .try_init();
}

/// Prints one line to standard output.
pub(crate) fn line(text: &str) {
    println!("{text}");
}

/// Prints an error line to standard error.
pub(crate) fn error_line(text: &str) {
    eprintln!("error: {text}");
}

/// Prints a warning line to standard error.
pub(crate) fn warn_line(text: &str) {
    eprintln!("warning: {text}");
}

/// A progress bar on a terminal; `None` elsewhere (logs tell the story there).
pub(crate) fn progress_bar(enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} (eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
