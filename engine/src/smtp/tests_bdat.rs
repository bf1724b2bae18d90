//! Protocol tests for CHUNKING: the envelope and the whole message as `BDAT n LAST` in one
//! write (one round trip), byte counts without dot-stuffing, and the fall-backs.

use std::time::Duration;

use tokio::time::timeout;

use super::tests::{config, pair};
use super::*;

const LIMIT: Duration = Duration::from_secs(10);
const EHLO_CHUNKING: &str = "250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

fn envelope() -> Envelope {
    Envelope {
        mail_from: "sender@example.org".to_owned(),
        rcpt_to: vec!["a@example.net".to_owned()],
    }
}

#[tokio::test]
async fn the_envelope_and_message_go_in_one_write_as_bdat_last() {
    let (client, mut peer, writes) = pair();
    let server = tokio::spawn(async move {
        peer.greet(EHLO_CHUNKING).await;
        for round in 0..2 {
            if round == 1 {
                peer.expect("RSET\r\n").await;
            }
            // ".x" is not dot-stuffed: BDAT counts bytes; the bare LF became CRLF.
            peer.expect("MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nBDAT 8 LAST\r\nhi\r\n.x\r\n")
                .await;
            if round == 1 {
                peer.say("250 reset\r\n").await;
            }
            peer.say("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n").await;
        }
    });
    let mut session = timeout(LIMIT, Session::connect_stream(client, &config()))
        .await
        .unwrap()
        .unwrap();
    writes.lock().unwrap().clear();
    for _ in 0..2 {
        let tx = timeout(LIMIT, session.send(&envelope(), b"hi\n.x"))
            .await
            .unwrap()
            .unwrap();
        assert!(tx.accepted());
        assert_eq!(tx.outcome_for(0).to_string(), "250 2.0.0 queued");
    }
    timeout(LIMIT, server).await.unwrap().unwrap();
    let writes = writes.lock().unwrap();
    assert_eq!(writes.len(), 2, "one write per message: {writes:?}");
}

#[tokio::test]
async fn a_refused_recipient_still_reads_the_chunk_reply_and_decides_by_rcpt() {
    let (client, mut peer, _) = pair();
    let server = tokio::spawn(async move {
        peer.greet(EHLO_CHUNKING).await;
        peer.expect(
            "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nBDAT 3 LAST\r\nx\r\n",
        )
        .await;
        peer.say("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n")
            .await;
    });
    let mut session = timeout(LIMIT, Session::connect_stream(client, &config()))
        .await
        .unwrap()
        .unwrap();
    let tx = timeout(LIMIT, session.send(&envelope(), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert!(!tx.accepted());
    assert_eq!(tx.outcome_for(0).code, 550);
    assert!(session.is_usable());
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failed_chunk_decides_the_recipient() {
    let (client, mut peer, _) = pair();
    let server = tokio::spawn(async move {
        peer.greet(EHLO_CHUNKING).await;
        peer.expect(
            "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nBDAT 3 LAST\r\nx\r\n",
        )
        .await;
        peer.say("250 ok\r\n250 ok\r\n554 5.7.1 content rejected\r\n")
            .await;
    });
    let mut session = timeout(LIMIT, Session::connect_stream(client, &config()))
        .await
        .unwrap()
        .unwrap();
    let tx = timeout(LIMIT, session.send(&envelope(), b"x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.outcome_for(0).to_string(), "554 5.7.1 content rejected");
    timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn chunking_off_or_without_pipelining_falls_back_to_data() {
    for (ehlo, chunking) in [
        ("250-mx.example\r\n250 CHUNKING\r\n", true),
        (EHLO_CHUNKING, false),
    ] {
        let (client, mut peer, _) = pair();
        let pipelined = ehlo.contains("PIPELINING");
        let server = tokio::spawn(async move {
            peer.greet(ehlo).await;
            if pipelined {
                peer.expect(
                    "MAIL FROM:<sender@example.org>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n",
                )
                .await;
                peer.say("250 ok\r\n250 ok\r\n354 go\r\n").await;
            } else {
                peer.expect("MAIL FROM:<sender@example.org>\r\n").await;
                peer.say("250 ok\r\n").await;
                peer.expect("RCPT TO:<a@example.net>\r\n").await;
                peer.say("250 ok\r\n").await;
                peer.expect("DATA\r\n").await;
                peer.say("354 go\r\n").await;
            }
            peer.expect("..x\r\n.\r\n").await;
            peer.say("250 done\r\n").await;
        });
        let mut cfg = config();
        cfg.chunking = chunking;
        let mut session = timeout(LIMIT, Session::connect_stream(client, &cfg))
            .await
            .unwrap()
            .unwrap();
        let tx = timeout(LIMIT, session.send(&envelope(), b".x"))
            .await
            .unwrap()
            .unwrap();
        assert!(tx.accepted(), "{ehlo:?} chunking={chunking}");
        timeout(LIMIT, server).await.unwrap().unwrap();
    }
}
