//! `volley serve` with a `[bounces]` section: the receiver runs with the file's limits, spools
//! into `<store>/bounce-spool`, and what it takes is in the store when the server has stopped.

use tokio_util::sync::CancellationToken;
use volley::runtime::{ServeOptions, Server};
use volley::store::Store;

use super::{dsn, stuffed, Client};
use crate::support::LIMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_receives_bounces_with_the_limits_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("volley.toml");
    std::fs::write(
        &file,
        "store = \"news.volley\"\n\n[bounces]\nbind = \"127.0.0.1:0\"\nmax_recipients = 2\n\
         max_message_size = 100000\ncommand_timeout = \"1m\"\n",
    )
    .unwrap();
    let settings = volley::config::load_serve(&file).unwrap();
    let cancel = CancellationToken::new();
    let server = Server::open(settings, ServeOptions::default(), cancel.clone())
        .await
        .unwrap();
    let addr = server.bounces_addr().unwrap();
    let running = tokio::spawn(server.run());

    let mut client = Client::connect(addr).await;
    assert!(client.reply().await.unwrap().starts_with("220 "));
    let ehlo = client.command("EHLO mx.example.net").await;
    assert!(ehlo.contains("SIZE 100000"), "{ehlo}");
    assert_eq!(client.command("MAIL FROM:<>").await, "250 2.1.0 Ok");
    for (i, expected) in [
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "452 4.5.3 Too many recipients",
    ]
    .iter()
    .enumerate()
    {
        let reply = client
            .command(&format!("RCPT TO:<bounces+{i}@bounce.example.com>"))
            .await;
        assert_eq!(&reply, expected);
    }
    assert!(client.command("DATA").await.starts_with("354"));
    let message = dsn("multi-recipient.eml");
    client.send(&stuffed(&message)).await;
    assert!(client.reply().await.unwrap().starts_with("250 2.0.0"));
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");

    cancel.cancel();
    tokio::time::timeout(LIMIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let store_dir = dir.path().join("news.volley");
    let spool = store_dir.join("bounce-spool");
    assert!(
        super::spool_files(&spool).is_empty(),
        "ingested before the stop"
    );
    let store = Store::open(&store_dir).unwrap();
    let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
    assert!(store.is_ingested(fingerprint.as_ref()).unwrap());
}
