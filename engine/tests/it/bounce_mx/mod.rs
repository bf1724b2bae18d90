//! The bounce receiver (the bounce domain's MX) through real sockets: a DSN from `fixtures/dsn`
//! is spooled before `250` and ingested into a real store, and hostile clients (endless lines,
//! huge bodies, idle and slow connections, recipient floods) get their reply or are
//! disconnected while real DSNs still get in.

mod abuse;
mod serve;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use volley::bounce::receiver::{Ingest, Receiver, ReceiverConfig, Stats};
use volley::store::Store;

use crate::support::{fixtures, LIMIT};

/// A bounce receiver on loopback port 0 with a fresh store.
pub struct Mx {
    pub receiver: Option<Receiver>,
    pub store: Store,
    pub cancel: CancellationToken,
    pub spool: PathBuf,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Mx {
    /// Starts a receiver with the defaults changed by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut ReceiverConfig)) -> Mx {
        let dir = tempfile::tempdir().unwrap();
        Mx::start_in(dir, tweak).await
    }

    /// Starts a receiver whose store and spool are in `dir`.
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut ReceiverConfig)) -> Mx {
        let store = Store::open(&dir.path().join("store")).unwrap();
        let spool = dir.path().join("spool");
        let mut config = ReceiverConfig {
            spool: spool.clone(),
            ..ReceiverConfig::default()
        };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cancel = CancellationToken::new();
        let receiver =
            volley::runtime::receive_bounces(listener, config, &store, None, None, cancel.clone())
                .unwrap();
        Mx {
            addr: receiver.addr(),
            receiver: Some(receiver),
            store,
            cancel,
            spool,
            _dir: dir,
        }
    }

    pub fn stats(&self) -> Stats {
        self.receiver.as_ref().unwrap().stats()
    }

    /// Waits (bounded) until `message` is recorded as ingested in the store.
    pub async fn wait_ingested(&self, message: &[u8]) {
        let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
        wait_until("the DSN to be ingested", || {
            self.store.is_ingested(fingerprint.as_ref()).unwrap()
        })
        .await;
    }

    /// Files in the spool folder.
    pub fn spooled(&self) -> Vec<String> {
        spool_files(&self.spool)
    }

    /// Stops the receiver and waits for it.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(receiver) = self.receiver.take() {
            tokio::time::timeout(LIMIT, receiver.stopped())
                .await
                .unwrap();
        }
    }
}

pub fn spool_files(spool: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Polls `condition` every 20 ms until it holds; fails after [`LIMIT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fixture DSN as it travels: CRLF line endings.
pub fn dsn(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixtures().join("dsn").join(name)).unwrap();
    let mut crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !crlf.ends_with("\r\n") {
        crlf.push_str("\r\n");
    }
    crlf.into_bytes()
}

/// `message` dot-stuffed and ended with `.` CRLF, as DATA carries it.
pub fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The reading half of a client: whole replies.
pub struct Replies(BufReader<OwnedReadHalf>);

impl Replies {
    /// The next whole reply (its lines joined by `\n`), or `None` when the server closed.
    pub async fn next(&mut self) -> Option<String> {
        read_reply(&mut self.0).await
    }
}

/// Reads one whole reply from `reader`; `None` when the server closed first.
pub async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(LIMIT, reader.read_line(&mut line))
            .await
            .expect("no reply in time");
        match read {
            Ok(0) | Err(_) => return (!lines.is_empty()).then(|| lines.join("\n")),
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Some(lines.join("\n"));
        }
    }
}

/// A raw SMTP client that reads replies whole.
pub struct Client {
    pub replies: Replies,
    pub writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(LIMIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        Client::over(stream)
    }

    /// Connects from the loopback address `from` (e.g. 127.0.0.2: another client).
    pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = tokio::time::timeout(LIMIT, socket.connect(addr))
            .await
            .unwrap()
            .unwrap();
        Client::over(stream)
    }

    pub fn over(stream: TcpStream) -> Client {
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Client {
            replies: Replies(BufReader::new(read)),
            writer,
        }
    }

    /// The next whole reply, or `None` when the server closed.
    pub async fn reply(&mut self) -> Option<String> {
        self.replies.next().await
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(LIMIT, self.writer.write_all(bytes))
            .await
            .unwrap()
            .unwrap();
    }

    /// Sends `line` (CRLF added) and returns the reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await.unwrap_or_default()
    }

    /// Greeting, EHLO, MAIL, one RCPT, DATA and `message`; returns the final reply.
    pub async fn deliver(&mut self, message: &[u8]) -> String {
        let banner = self.reply().await.unwrap();
        assert!(banner.starts_with("220 "), "{banner}");
        self.transaction(message).await
    }

    /// EHLO, MAIL, RCPT, DATA and `message`; returns the final reply.
    pub async fn transaction(&mut self, message: &[u8]) -> String {
        let ehlo = self.command("EHLO mx.example.net").await;
        assert!(ehlo.starts_with("250"), "{ehlo}");
        assert_eq!(self.command("MAIL FROM:<>").await, "250 2.1.0 Ok");
        assert_eq!(
            self.command("RCPT TO:<bounces+AAAA@bounce.example.com>")
                .await,
            "250 2.1.5 Ok"
        );
        let go = self.command("DATA").await;
        assert!(go.starts_with("354 "), "{go}");
        self.send(&stuffed(message)).await;
        self.reply().await.unwrap_or_default()
    }
}

/// Delivers a fixture DSN on a new connection and waits until it is ingested.
pub async fn deliver_and_ingest(mx: &Mx, from: IpAddr, name: &str) {
    let message = dsn(name);
    let mut client = Client::connect_from(from, mx.addr).await;
    let reply = client.deliver(&message).await;
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    mx.wait_ingested(&message).await;
}

/// The first whole reply of a new connection: its banner or its refusal.
pub async fn first_reply(mx: &Mx) -> (Client, String) {
    let mut client = Client::connect(mx.addr).await;
    let reply = client.reply().await.unwrap_or_default();
    (client, reply)
}

pub const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
pub const OTHER_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_is_spooled_acknowledged_ingested_and_removed_from_the_spool() {
    let mut mx = Mx::start(|_| {}).await;
    deliver_and_ingest(&mx, LOOPBACK, "postfix-user-unknown.eml").await;
    wait_until("the spool to empty", || mx.spooled().is_empty()).await;
    assert_eq!(mx.stats().messages, 1);
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_dsn_twice_is_ingested_once_and_several_per_session_work() {
    let mut mx = Mx::start(|_| {}).await;
    let message = dsn("exim-dsn.eml");
    let mut client = Client::connect(mx.addr).await;
    assert!(client.deliver(&message).await.starts_with("250 "));
    assert!(client.transaction(&message).await.starts_with("250 "));
    let other = dsn("gmail-nosuchuser.eml");
    assert!(client.transaction(&other).await.starts_with("250 "));
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    mx.wait_ingested(&message).await;
    mx.wait_ingested(&other).await;
    wait_until("all three ingested", || mx.stats().ingested == 3).await;
    mx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_out_of_order_get_503_and_unknown_ones_500() {
    let mut mx = Mx::start(|_| {}).await;
    let (mut client, banner) = first_reply(&mx).await;
    assert!(banner.starts_with("220 volley-bounces "), "{banner}");
    assert!(client
        .command("MAIL FROM:<>")
        .await
        .starts_with("503 5.5.1"));
    let ehlo = client.command("EHLO x.example").await;
    for extension in [
        "PIPELINING",
        "SIZE 10485760",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "no certificate, no STARTTLS: {ehlo}"
    );
    assert!(client.command("DATA").await.starts_with("503 5.5.1"));
    assert!(client
        .command("RCPT TO:<a@b.example>")
        .await
        .starts_with("503 5.5.1"));
    assert!(client.command("FROB").await.starts_with("500 5.5.2"));
    assert!(client.command("STARTTLS").await.starts_with("502 5.5.1"));
    assert!(client
        .command("MAIL FROM:<> SIZE=99999999")
        .await
        .starts_with("552 5.3.4"));
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    assert_eq!(client.reply().await, None);
    mx.stop().await;
}

/// What a crash leaves: a message acknowledged with 250 and fsynced in the spool, never
/// ingested. The next start ingests it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_spooled_but_not_ingested_before_a_crash_is_ingested_by_the_next_start() {
    struct Crashed;
    impl Ingest for Crashed {
        type Error = &'static str;
        fn ingest(&mut self, _: &str, _: &[u8]) -> Result<(), Self::Error> {
            Err("the process died before ingesting")
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let message = dsn("postfix-user-unknown.eml");
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = ReceiverConfig {
            spool: spool.clone(),
            max_backlog: 1,
            ..ReceiverConfig::default()
        };
        let cancel = CancellationToken::new();
        let receiver = Receiver::start(listener, config, Crashed, cancel.clone()).unwrap();
        let mut client = Client::connect(receiver.addr()).await;
        let reply = client.deliver(&message).await;
        assert!(reply.starts_with("250 2.0.0"), "{reply}");
        // Nothing gets ingested: past the backlog limit the spool takes no more.
        let full = client.command("MAIL FROM:<>").await;
        assert_eq!(
            full,
            "452 4.3.1 Insufficient system storage, try again later"
        );
        drop(client);
        cancel.cancel();
        tokio::time::timeout(LIMIT, receiver.stopped())
            .await
            .unwrap();
    }
    let left = spool_files(&spool);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(".eml"), "{left:?}");
    assert_eq!(std::fs::read(spool.join(&left[0])).unwrap(), message);
    // A draft being received when the process died: never acknowledged, dropped on start.
    std::fs::write(
        spool.join(".tmp-0000000000000-1-00000000"),
        b"half a message",
    )
    .unwrap();

    let mut mx = Mx::start_in(dir, |_| {}).await;
    mx.wait_ingested(&message).await;
    wait_until("the spool to empty", || mx.spooled().is_empty()).await;
    mx.stop().await;
}
