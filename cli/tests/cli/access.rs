//! Local access: a store folder is private (0700), its control socket is for its owner
//! (0600), and the process holding the store answers only its own user and root, even when
//! someone loosened every permission. The second user is `nobody`, reached with util-linux's
//! `setpriv` (needs root, as in CI); the test fails loudly when it cannot switch users.

use crate::support::{list, text, Fixture, PASSWORD};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use volley_testkit::sink::SinkConfig;

const NOBODY: &str = "65534";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `chmod -R a+rwX`: what a careless `chmod` or a shared-folder setup does to a store.
fn loosen_all(path: &Path) {
    let loose = if path.is_dir() { 0o777 } else { 0o666 };
    chmod(path, loose);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            loosen_all(&entry.unwrap().path());
        }
    }
}

/// Runs `volley ARGS…` as uid/gid 65534 (`nobody`), off the async runtime.
async fn volley_as_nobody(args: &[&str]) -> Output {
    assert_eq!(
        rustix::process::geteuid().as_raw(),
        0,
        "this test runs a command as a second user and needs root (as in CI)"
    );
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_volley"))
        .args(args)
        .env_remove("VOLLEY_LOG");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("setpriv (util-linux) must be installed to run a command as a second user");
    assert_ne!(
        output.status.code(),
        Some(127),
        "setpriv could not run volley as nobody: {}",
        text(&output.stderr)
    );
    output
}

/// Runs `volley ARGS…` as ourselves.
async fn volley_as_owner(args: &[&str]) -> Output {
    crate::support::output_of(args, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_and_root_reach_a_running_send() {
    if crate::support::sled_only("access::only_the_owner_and_root_reach_a_running_send") {
        return;
    }
    // A greylisting recipient keeps the send retrying, so it holds the store throughout.
    let config = SinkConfig {
        greylist_delay: Duration::from_secs(3600),
        ..SinkConfig::default()
    };
    let csv = list(5) + "grey-x@g.example,Grey\n";
    let fixture = Fixture::with_sink(&csv, PASSWORD, config).await;
    let mut child = fixture.spawn_send(false);
    fixture.wait_for_arrivals(5, &mut child).await;
    let store = fixture.path("campaign.volley");
    let socket = store.join("control.sock");
    let campaign = fixture.campaign();

    // The folder and the socket are the owner's only.
    assert_eq!(mode(&store), 0o700);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&socket), 0o600);

    // Another user who can read the campaign file cannot get into the store.
    chmod(fixture.dir.path(), 0o755);
    let output = volley_as_nobody(&["status", &campaign]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(text(&output.stdout).is_empty());

    // Everything loosened: the socket itself still refuses them, and nothing is done.
    loosen_all(&store);
    let output = volley_as_nobody(&["status", &campaign]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let refusal = format!(
        "control socket {}: refused: uid 65534 is not the store's owner (uid 0)",
        socket.display()
    );
    assert!(stderr.contains(&refusal), "{stderr}");
    assert!(text(&output.stdout).is_empty());

    // The owner (root here) is answered by the running send.
    let output = volley_as_owner(&["status", &campaign]).await;
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("sending now"), "{stdout}");
    let delivered = stdout
        .lines()
        .any(|l| l.split_whitespace().eq(["delivered", "5"]));
    assert!(delivered, "{stdout}");
    assert!(child.try_wait().unwrap().is_none(), "the send kept going");
    child.kill().unwrap();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
}
