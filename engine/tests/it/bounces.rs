//! List hygiene end to end: synchronous and late bounces land on the right recipient, the
//! address is suppressed, and the next campaign skips it.

use crate::support::{Fixture, Setup, LIMIT};
use volley::model::{Category, RecipientState, SuppressionReason};
use volley::runtime::{self, Intake};
use volley::store::Store;

const LIST: &str = "email,first_name,city\n\
    ok1@a.example,A,X\n\
    bounce-1@a.example,B,X\n\
    ok2@b.example,C,X\n";

fn bounces_setup() -> Setup {
    Setup {
        sections: "[bounces]\ndomain = \"bounce.example.com\"\n".into(),
        ..Setup::default()
    }
}

/// A Postfix-style DSN for `recipient`, sent to `to`, returning `message_id`.
fn dsn(to: &str, recipient: &str, status: &str, diagnostic: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.a.example (Mail Delivery System)\r\n\
To: {to}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn-{message_id}>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.a.example\r\n\
\r\n\
Final-Recipient: rfc822; {recipient}\r\n\
Action: failed\r\n\
Status: {status}\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\
\r\n\
--B\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: news@example.com\r\n\
To: {recipient}\r\n\
Message-ID: <{message_id}>\r\n\
Subject: Hello\r\n\
\r\n\
--B--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_suppresses_the_address_for_the_next_campaign() {
    let fixture = Fixture::new(Setup::default(), LIST).await;
    let first = fixture.send().await.unwrap();
    assert_eq!((first.counts.delivered, first.counts.bounced), (2, 1));
    fixture.rename_campaign("second-campaign");
    let second = fixture.send().await.unwrap();
    assert_eq!(second.counts.total, 3);
    assert_eq!((second.counts.delivered, second.counts.suppressed), (2, 1));
    let arrivals = crate::support::arrivals(&fixture.sink);
    assert_eq!(arrivals.get("ok1@a.example"), Some(&2));
    assert_eq!(arrivals.get("bounce-1@a.example"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_dsn_finds_its_recipient_by_verp_once() {
    let fixture = Fixture::new(bounces_setup(), LIST).await;
    fixture.send().await.unwrap();
    let received = fixture.sink.wait_for(2, LIMIT).await.unwrap();
    let to_ok2 = received
        .iter()
        .find(|m| m.rcpt_to == ["ok2@b.example"])
        .unwrap();
    assert!(
        to_ok2.mail_from.starts_with("bounces+"),
        "{}",
        to_ok2.mail_from
    );
    assert!(to_ok2.mail_from.ends_with("@bounce.example.com"));

    // Days later the receiving MX bounces it to the VERP address (no Message-ID known).
    let report = dsn(
        &to_ok2.mail_from,
        "ok2@b.example",
        "5.1.1",
        "550 5.1.1 user unknown",
        "unknown@x",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounce.eml");
    std::fs::write(&path, &report).unwrap();

    let campaign = fixture.campaign();
    let store = Store::open_at(&campaign.settings().store).unwrap();
    let intake = Intake::open(&store, Some(campaign.settings())).unwrap();
    let summary = intake.ingest_paths(std::slice::from_ref(&path)).unwrap();
    assert_eq!(summary.bounced, 1, "{summary:?}");
    let again = intake.ingest_paths(&[path]).unwrap();
    assert_eq!((again.bounced, again.already_ingested), (0, 1));

    let counts = store.counts("test-campaign").unwrap().unwrap();
    assert_eq!((counts.delivered, counts.bounced), (1, 2));
    let bounced = store
        .recipients_in("test-campaign", RecipientState::Bounced)
        .unwrap();
    let ok2 = bounced
        .iter()
        .find(|r| r.record.email == "ok2@b.example")
        .unwrap();
    assert_eq!(
        ok2.record.last_reply.as_ref().unwrap().enhanced.as_deref(),
        Some("5.1.1")
    );
    assert!(store.suppression("ok2@b.example").unwrap().is_some());
    let summary = runtime::bounce_summary(&store, "test-campaign").unwrap();
    assert_eq!((summary.bounced, summary.hard), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_verp_the_returned_message_id_finds_the_recipient() {
    let fixture = Fixture::new(Setup::default(), LIST).await;
    fixture.send().await.unwrap();
    let received = fixture.sink.wait_for(2, LIMIT).await.unwrap();
    let to_ok1 = received
        .iter()
        .find(|m| m.rcpt_to == ["ok1@a.example"])
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&to_ok1.data)
        .unwrap();
    let message_id = parsed.message_id().unwrap().to_owned();

    let report = dsn(
        "news@example.com",
        "ok1@a.example",
        "5.2.1",
        "550 5.2.1 mailbox disabled",
        &message_id,
    );
    let campaign = fixture.campaign();
    let store = Store::open_at(&campaign.settings().store).unwrap();
    let intake = Intake::open(&store, Some(campaign.settings())).unwrap();
    let mut summary = runtime::IngestSummary::default();
    intake
        .ingest_message("test", &report, &mut summary)
        .unwrap();
    assert_eq!(summary.bounced, 1, "{summary:?}");
    assert!(
        summary.matched[0].contains("via Message-ID"),
        "{:?}",
        summary.matched
    );

    // A bounce for nobody we know is reported as unmatched, and changes nothing.
    let stray = dsn(
        "news@example.com",
        "who@c.example",
        "5.1.1",
        "550 5.1.1 unknown",
        "nobody@x",
    );
    intake
        .ingest_message("stray", &stray, &mut summary)
        .unwrap();
    assert_eq!(summary.unmatched.len(), 1);
    assert!(
        summary.unmatched[0].contains("who@c.example"),
        "{:?}",
        summary.unmatched
    );
}

#[test]
fn suppression_import_export_round_trips_and_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "email,reason\nA@Example.COM,complaint\nbad-address,\nb@example.com,\nc@example.com,nonsense\n").unwrap();
    let summary = runtime::suppress_import(&store, &csv).unwrap();
    assert_eq!(summary.added, 2);
    assert_eq!(summary.errors.len(), 2, "{:?}", summary.errors);
    assert!(summary.errors[0].contains("line 3"), "{:?}", summary.errors);
    let mut out = Vec::new();
    runtime::suppress_export(&store, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("A@example.com,complaint"), "{text}");
    assert!(text.contains("b@example.com,manual"), "{text}");
    assert!(runtime::suppress_remove(&store, "b@EXAMPLE.com", None).unwrap());
    assert!(store.suppression("b@example.com").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_report_suppresses_the_recipient_for_the_next_campaign() {
    let fixture = Fixture::new(bounces_setup(), LIST).await;
    fixture.send().await.unwrap();
    let received = fixture.sink.wait_for(2, LIMIT).await.unwrap();
    let to_ok1 = received
        .iter()
        .find(|m| m.rcpt_to == ["ok1@a.example"])
        .unwrap();
    // The feedback loop returns the original, whose Return-Path carries the VERP token.
    let arf = std::fs::read_to_string(crate::support::fixtures().join("dsn/arf-complaint.eml"))
        .unwrap()
        .replace("bounces+KKKK@bounce.example.com", &to_ok1.mail_from)
        .replace("Complainer@MailProvider.example", "ok1@a.example")
        .replace("Complainer@mailprovider.example", "ok1@a.example")
        .replace("abc123@example.com", "not-ours@example.com");

    let campaign = fixture.campaign();
    {
        let store = Store::open_at(&campaign.settings().store).unwrap();
        let intake = Intake::open(&store, Some(campaign.settings())).unwrap();
        let mut summary = runtime::IngestSummary::default();
        intake
            .ingest_message("arf.eml", arf.as_bytes(), &mut summary)
            .unwrap();
        assert_eq!(summary.complaints, 1, "{summary:?}");
        let entry = store.suppression("ok1@a.example").unwrap().unwrap();
        assert_eq!(entry.reason, volley::model::SuppressionReason::Complaint);
        let summary = runtime::bounce_summary(&store, "test-campaign").unwrap();
        assert_eq!(summary.complaints, 1);
    }
    fixture.rename_campaign("next-campaign");
    let next = fixture.send().await.unwrap();
    assert_eq!(
        (next.counts.delivered, next.counts.suppressed),
        (1, 2),
        "{:?}",
        next.counts
    );
}

/// Hard means gone, at send time: `550 5.1.1` at RCPT suppresses the address at once, while
/// `550 5.7.1 … blocked` (deferred once: it blames the sender, and the breaker counts it;
/// refused again on the retry while the destination takes the others, it bounces) leaves the
/// address on the list (one soft bounce of the run the `[bounces]` policy needs), so the
/// next campaign mails it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_rcpt_is_a_soft_bounce_and_does_not_suppress() {
    const LIST: &str = "email,first_name,city\n\
        ok1@a.example,A,X\n\
        bounce-1@a.example,B,X\n\
        blocked-1@b.example,C,X\n";
    let fixture = Fixture::new(Setup::default(), LIST).await;
    let first = fixture.send().await.unwrap();
    assert_eq!((first.counts.delivered, first.counts.bounced), (1, 2));
    let campaign = fixture.campaign();
    let store = Store::open_at(&campaign.settings().store).unwrap();
    let bounced = store
        .recipients_in("test-campaign", RecipientState::Bounced)
        .unwrap();
    let reply_of = |email: &str| {
        let r = bounced.iter().find(|r| r.record.email == email).unwrap();
        r.record.last_reply.clone().unwrap()
    };
    let blocked = reply_of("blocked-1@b.example");
    assert_eq!(blocked.category, Some(Category::Blocked), "{blocked}");
    assert!(!blocked.hard, "{blocked}");
    let gone = reply_of("bounce-1@a.example");
    assert_eq!(gone.category, Some(Category::InvalidRecipient), "{gone}");
    assert!(gone.hard, "{gone}");
    assert_eq!(
        store
            .suppression("bounce-1@a.example")
            .unwrap()
            .map(|s| s.reason),
        Some(SuppressionReason::HardBounce)
    );
    assert!(store.suppression("blocked-1@b.example").unwrap().is_none());
    let summary = runtime::bounce_summary(&store, "test-campaign").unwrap();
    assert_eq!((summary.bounced, summary.hard), (2, 1));
    drop(store);

    // The next campaign skips the gone address and tries the blocked one again.
    fixture.rename_campaign("second-campaign");
    let second = fixture.send().await.unwrap();
    assert_eq!(
        (second.counts.suppressed, second.counts.bounced),
        (1, 1),
        "{:?}",
        second.counts
    );
}
