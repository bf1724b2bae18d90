//! `volley`: the command-line face of the Volley engine. Parses arguments, drives the engine,
//! draws progress and tables, and maps results to exit codes.

mod ab;
mod args;
mod audience;
mod bounces;
mod check;
mod conversions;
mod demo;
mod dns;
mod events;
mod gc;
mod handover;
mod init;
mod load;
mod report;
mod send;
mod serve;
mod sink;
mod status;
mod store;
mod store_upgrade;
mod suppress;
mod test_send;
mod timings;
mod track;
mod ui;
mod view;
mod words;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: with many threads (tokio workers, compose
/// threads), glibc's per-thread arenas fragment and a long send's memory creeps up; with
/// mimalloc it stays flat (measured: 1,000,000 recipients, see docs/src/development/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, as documented in `volley send --help` and docs/src/operations/exit-codes.md.
pub(crate) mod exit {
    /// Everything done, nothing failed.
    pub(crate) const OK: u8 = 0;
    /// Finished, but some rows or recipients failed (or stay deferred).
    pub(crate) const FAILURES: u8 = 1;
    /// Could not run.
    pub(crate) const CANNOT_RUN: u8 = 2;
    /// The campaign (or edition) is being sent by another process already; nothing done.
    pub(crate) const ALREADY_SENDING: u8 = 3;
    /// Interrupted by SIGINT or SIGTERM; state saved.
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// A write past the file-size limit (`ulimit -f`) or onto a full quota then fails with an
/// error the store reports ("file too large"), instead of SIGXFSZ killing the process
/// mid-write: the send stops with a clear message and a re-run resumes.
fn ignore_file_size_signal() {
    /// SIGXFSZ on Linux.
    const SIGXFSZ: i32 = 25;
    let handler = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ));
    // Once registered, the handler stays for the life of the process.
    drop(handler);
}

/// Waits until `seconds` have passed (when given), or SIGINT or SIGTERM arrives: how the
/// test servers (`volley sink`, `volley dns`) run until stopped.
pub(crate) async fn until_stopped(seconds: Option<u64>) {
    let timer_or_ctrl_c = async {
        match seconds {
            Some(seconds) => tokio::time::sleep(std::time::Duration::from_secs(seconds)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                () = timer_or_ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => timer_or_ctrl_c.await,
    }
}

/// mimalloc's `purge_delay` option (its index in `mi_option_t`, the same in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once rather than a second later (mimalloc 3's
/// default): at thousands of messages a second a second's worth of freed buffers is tens of
/// megabytes (a million-recipient send peaked at 318 MB with the default, 258 MB without the
/// delay, at the same speed). `MIMALLOC_PURGE_DELAY` in the environment still wins.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator this binary links; mimalloc
        // reads options atomically and allows changing this one at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli = args::Cli::parse();
    let timings = cli.timings.then(timings::Timings::default);
    ui::init_logging(cli.log_format, timings.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(&anyhow::Error::new(error).context("starting the async runtime"))
        }
    };
    let result = runtime.block_on(async {
        ignore_file_size_signal();
        match cli.command {
            args::Command::Send(args) => Box::pin(send::run(args)).await,
            args::Command::Load(args) => load::run(args).await,
            args::Command::TestSend(args) => test_send::run(args).await,
            args::Command::Status(args) => status::run(args).await,
            args::Command::Demo(args) => demo::run(args).await,
            args::Command::Bounces(command) => bounces::run(command).await,
            args::Command::Suppress(command) => suppress::run(command),
            args::Command::Track(command) => track::run(command).await,
            args::Command::Serve(args) => serve::run(args).await,
            args::Command::Check(args) => check::run(args).await,
            args::Command::Audience(args) => audience::run(args).await,
            args::Command::Init(args) => init::run(&args),
            args::Command::Events(args) => events::run(args).await,
            args::Command::Report(args) => report::run(args).await,
            args::Command::Ab(args::AbCommand::Decide(args)) => ab::decide(args).await,
            args::Command::Conversions(args::ConversionsCommand::Import(args)) => {
                conversions::import(args).await
            }
            args::Command::Gc(args) => gc::run(args).await,
            args::Command::Store(args::StoreCommand::Copy(args)) => store::copy(args).await,
            args::Command::Store(args::StoreCommand::Upgrade { dir }) => store_upgrade::run(&dir),
            args::Command::Sink(args) => sink::run(args).await,
            args::Command::Dns(args) => dns::run(args).await,
        }
    });
    if let Some(table) = timings.and_then(|t| t.table()) {
        ui::line(&format!("where the time went (per span):\n{table}"));
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => fail(&error),
    }
}

/// Prints an error with its causes and returns the "could not run" exit code.
fn fail(error: &anyhow::Error) -> ExitCode {
    ui::error_line(&describe(error));
    ExitCode::from(exit::CANNOT_RUN)
}

/// The error and its causes on one line, leaving out a cause whose text the line already
/// carries (many messages quote their source).
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
