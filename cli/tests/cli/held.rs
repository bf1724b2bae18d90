//! `volley serve` with an A/B test held for later: the test share is out, `[ab] wait` has
//! passed, the verdict is inconclusive and `on_inconclusive = "hold"` keeps the remainder.
//! The server says so once, then stays quiet and idle until an event or `recheck_every`
//! gives it something new to look at: a few log lines and a few percent of a core at most,
//! measured from the process's own CPU time in /proc over a number of the server's passes
//! (each one logged at debug level), not over a guessed stretch of time.

use crate::support::{list, text, volley, Fixture, PASSWORD};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use volley_testkit::campaign::ServeToml;

/// What the server logs when the verdict holds.
const HELD: &str = "the remainder stays held";
/// What the server logs (at debug level) after each look at its campaigns.
const PASS: &str = "pass finished";
/// How many passes (a second apart) the idle server is watched for.
const WINDOW: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_holding_an_inconclusive_test_is_quiet_and_idle() {
    let mut fixture = Fixture::new(&list(3_000), PASSWORD).await;
    // About 1,500 in the test share, and nobody clicks: inconclusive. Big enough that taking
    // the verdict again and again would show in the CPU time.
    fixture.add_to_campaign(
        "[[variant]]\nid = \"A\"\nsubject = \"Version A\"\n\n\
         [[variant]]\nid = \"B\"\nsubject = \"Version B\"\n\n\
         [ab]\ntest_share = 0.5\nwait = \"1s\"\non_inconclusive = \"hold\"",
    );
    ServeToml::new("campaign.volley")
        .campaign("campaign.toml")
        .write(&fixture.path("serve.toml"));

    // A look at the campaign every second, as busy as a server gets.
    let mut server = volley()
        .args([
            "serve",
            "--tick",
            "1",
            "--config",
            &fixture.path("serve.toml").display().to_string(),
        ])
        .env("VOLLEY_LOG", "info,volley::runtime::serve=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = log_lines(&mut server);
    let mut seen = Vec::new();
    let held = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.recv().await {
            let is_held = line.contains(HELD);
            seen.push(line);
            if is_held {
                return;
            }
        }
        panic!("the server ended before holding:\n{}", seen.join("\n"));
    })
    .await;
    assert!(held.is_ok(), "never held:\n{}", seen.join("\n"));
    let test_share = fixture.sink.count();
    assert!(
        test_share > 0 && test_share < 3_000,
        "the test share, not the remainder: {test_share}"
    );

    let pid = server.id();
    let (cpu_before, started) = (cpu_time(pid), Instant::now());
    let mut during = Vec::new();
    let mut passes = 0;
    let watched = tokio::time::timeout(Duration::from_secs(120), async {
        while passes < WINDOW {
            let Some(line) = lines.recv().await else {
                panic!("the server ended while watched:\n{}", during.join("\n"));
            };
            if line.contains(PASS) {
                passes += 1;
            } else {
                during.push(line);
            }
        }
    })
    .await;
    assert!(watched.is_ok(), "{passes} passes in two minutes");
    let (cpu_after, window) = (cpu_time(pid), started.elapsed());

    let busy = (cpu_after - cpu_before).as_secs_f64() / window.as_secs_f64();
    eprintln!(
        "held: {:?} of CPU over {window:?} ({:.2} % of a core), {} log lines",
        cpu_after - cpu_before,
        busy * 100.0,
        during.len()
    );
    assert!(
        busy < 0.05,
        "{:.1} % of a core over {window:?}",
        busy * 100.0
    );
    assert!(
        during.len() <= 2,
        "{} lines:\n{}",
        during.len(),
        during.join("\n")
    );
    let all: Vec<&String> = seen
        .iter()
        .chain(&during)
        .filter(|l| !l.contains(PASS))
        .collect();
    assert_eq!(
        all.iter().filter(|l| l.contains(HELD)).count(),
        1,
        "held, said once: {all:#?}"
    );
    assert_eq!(fixture.sink.count(), test_share, "the remainder stays held");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || server.wait()),
    )
    .await
    .expect("the server stopped in time")
    .unwrap()
    .unwrap();
    assert_eq!(stopped.code(), Some(0));
}

/// The server's standard error, line by line, as it comes.
fn log_lines(server: &mut Child) -> UnboundedReceiver<String> {
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The CPU time process `pid` has used so far, all threads, user and system
/// (`utime` + `stime` of /proc/PID/stat, in clock ticks).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the stat line; 3 is the first after the name.
    let ticks: u64 =
        fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

/// `getconf CLK_TCK`: the unit of the /proc CPU times (100 on Linux almost everywhere).
fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf (libc-bin) is needed to read /proc CPU times");
    text(&out.stdout).trim().parse().unwrap()
}
