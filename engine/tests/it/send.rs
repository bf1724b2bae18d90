//! The core story: a campaign goes out through an authenticated STARTTLS relay, every
//! message personalised and DKIM-verifiable, and the counts match what arrived.

use crate::support::{self, Fixture, Setup, LIMIT};
use volley_testkit::sink::SinkTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_arrives_complete_signed_and_counted_over_starttls_with_auth() {
    let fixture = Fixture::new(Setup::default(), &support::list(200, 10)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.total, 200);
    assert_eq!(report.counts.delivered, 200);
    assert_eq!(report.counts.pending + report.counts.deferred, 0);

    let received = fixture.sink.wait_for(200, LIMIT).await.unwrap();
    assert_eq!(received.len(), 200);
    assert!(received
        .iter()
        .all(|m| m.tls && m.auth_user.as_deref() == Some(support::USER)));
    let records = support::dkim_records();
    for message in received.iter().take(20) {
        let results = volley::dkim::verify(&message.data, &records).await;
        assert_eq!(results.len(), 2, "an Ed25519 and an RSA signature");
        assert!(results.iter().all(|r| r.pass), "{results:?}");
    }
    let one = received
        .iter()
        .find(|m| m.rcpt_to == ["user7@d7.example"])
        .unwrap();
    let text = String::from_utf8_lossy(&one.data);
    assert!(text.contains("Hello Name7"), "personalised subject");
    assert!(text.contains("your city is City0"), "personalised body");
    assert_eq!(one.mail_from, "news@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_implicit_tls_relays_work_too() {
    for tls in [SinkTls::None, SinkTls::Implicit] {
        let setup = Setup {
            tls,
            auth: false,
            ..Setup::default()
        };
        let fixture = Fixture::new(setup, &support::list(30, 3)).await;
        let report = fixture.send().await.unwrap();
        assert_eq!(report.counts.delivered, 30);
        let received = fixture.sink.wait_for(30, LIMIT).await.unwrap();
        assert_eq!(received.iter().all(|m| m.tls), tls == SinkTls::Implicit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_decide_each_recipient_state() {
    let csv = "email,first_name,city\n\
        ok1@a.example,A,X\n\
        bounce-1@a.example,B,X\n\
        defer-1@b.example,C,X\n\
        drop-1@b.example,D,X\n\
        421-1@c.example,F,X\n\
        ok2@c.example,E,X\n";
    let fixture = Fixture::new(Setup::default(), csv).await;
    let report = fixture.send().await.unwrap();
    let c = &report.counts;
    // defer-1 (451 once), drop-1 (connection lost in DATA once) and 421-1 (421, then the
    // server closes; once) are deferred, retried after 1s and delivered.
    assert_eq!(
        (c.delivered, c.bounced, c.deferred, c.pending),
        (5, 1, 0, 0),
        "{c:?}"
    );
    let arrivals = support::arrivals(&fixture.sink);
    assert_eq!(arrivals.get("bounce-1@a.example"), None);
    assert_eq!(arrivals.get("defer-1@b.example"), Some(&1));
    assert_eq!(arrivals.get("drop-1@b.example"), Some(&1));
    assert_eq!(arrivals.get("421-1@c.example"), Some(&1));
    assert_eq!(
        arrivals.values().sum::<usize>(),
        5,
        "nobody else was sent twice"
    );
    let store = volley::store::Store::open(&fixture.path("campaign.volley")).unwrap();
    let bounced = store
        .recipients_in("test-campaign", volley::model::RecipientState::Bounced)
        .unwrap();
    let reply = bounced[0].record.last_reply.clone().unwrap();
    assert_eq!(
        (reply.code, reply.enhanced.as_deref()),
        (Some(550), Some("5.1.1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_and_duplicates_are_counted_and_the_rest_still_goes() {
    let csv = "email,first_name,city\n\
        good@a.example,A,X\n\
        missing-at.example,B,X\n\
        GOOD@a.example,C,X\n\
        good@A.EXAMPLE,D,X\n\
        too,many,fields,here\n\
        last@b.example,E,X\n";
    let fixture = Fixture::new(Setup::default(), csv).await;
    let report = fixture.send().await.unwrap();
    let c = &report.counts;
    // GOOD@a.example differs in its local part (case-sensitive); good@A.EXAMPLE is a duplicate.
    assert_eq!(
        (c.total, c.delivered, c.invalid, c.duplicate),
        (3, 3, 2, 1),
        "{c:?}"
    );
    let lines: Vec<u64> = report.row_errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 6]);
    assert!(
        report.row_errors[0].to_string().contains("line 3"),
        "{}",
        report.row_errors[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_field_cannot_inject_a_header() {
    let csv = "email,first_name,city\n\
        victim@a.example,\"Eve\r\nBcc: attacker@evil.example\",\"X\nReply-To: evil@evil.example\"\n";
    let setup = Setup {
        subject: "Hi {{ first_name }} in {{ city }}".into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, csv).await;
    fixture.send().await.unwrap();
    let received = fixture.sink.wait_for(1, LIMIT).await.unwrap();
    assert_eq!(
        received[0].rcpt_to,
        ["victim@a.example"],
        "no extra recipient"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&received[0].data)
        .unwrap();
    assert!(parsed.header("Bcc").is_none());
    assert_eq!(parsed.header_values("Reply-To").count(), 0);
    let subject = parsed.subject().unwrap();
    assert!(
        subject.starts_with("Hi Eve") && subject.contains("attacker@evil.example"),
        "{subject}"
    );
}

/// The header lines of a message, folded lines joined back (RFC 5322 unfolding).
fn header_lines(data: &[u8]) -> Vec<String> {
    let raw = String::from_utf8_lossy(data);
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    head.replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

/// Every other header a merge value could reach: the variants' subjects, the From name a
/// variant sets, Reply-To, and the tracking headers (List-Unsubscribe with its mailto). A row
/// with CR/LF in every field, and one with CR/LF in its address, add no header and no
/// recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_merge_field_injects_a_header_through_variants_or_tracking() {
    let evil_name = "Eve\r\nBcc: attacker@evil.example";
    let evil_city = "X\nReply-To: evil@evil.example\r\nList-Unsubscribe: <https://evil.example/u>\rFrom: evil@evil.example";
    let mut csv = String::from("email,first_name,city\n");
    for i in 0..16 {
        csv.push_str(&format!(
            "user{i}@a.example,\"{evil_name}\",\"{evil_city}\"\n"
        ));
    }
    csv.push_str("\"bad@a.example\r\nBcc: attacker@evil.example\",Eve,X\n");
    let setup = Setup {
        subject: "Hi {{ first_name }}".into(),
        extra_campaign: "reply_to = \"help@example.com\"".into(),
        sections: "[tracking]\nbase_url = \"https://t.example.com\"\nkey_file = \"track.key\"\n\
             unsubscribe_mailto = \"unsub@example.com\"\n\n\
             [[variant]]\nid = \"A\"\nsubject = \"A {{ first_name }} from {{ city }}\"\n\n\
             [[variant]]\nid = \"B\"\nsubject = \"B {{ city }}\"\nfrom_name = \"Shop Team\"\n"
            .into(),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &csv).await;
    std::fs::write(fixture.path("track.key"), "a tracking key for the tests\n").unwrap();
    let report = fixture.send().await.unwrap();
    assert_eq!(
        (report.counts.delivered, report.counts.invalid),
        (16, 1),
        "{:?}",
        report.counts
    );
    let received = fixture.sink.wait_for(16, LIMIT).await.unwrap();
    let mut variants = std::collections::BTreeSet::new();
    for message in &received {
        assert_eq!(message.rcpt_to.len(), 1, "no extra recipient");
        assert!(message.rcpt_to[0].ends_with("@a.example"));
        let lines = header_lines(&message.data);
        let named = |name: &str| -> Vec<&String> {
            let prefix = format!("{}:", name.to_ascii_lowercase());
            lines
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
                .collect()
        };
        assert!(named("Bcc").is_empty(), "{lines:#?}");
        assert_eq!(named("Reply-To").len(), 1, "{lines:#?}");
        assert!(named("Reply-To")[0].contains("help@example.com"));
        assert_eq!(named("From").len(), 1, "{lines:#?}");
        assert!(named("From")[0].contains("<news@example.com>"));
        let unsubscribe = named("List-Unsubscribe");
        assert_eq!(unsubscribe.len(), 1, "{lines:#?}");
        assert!(
            unsubscribe[0].starts_with("List-Unsubscribe: <https://t.example.com/u/")
                && unsubscribe[0].ends_with(", <mailto:unsub@example.com?subject=unsubscribe>")
                && !unsubscribe[0].contains("evil"),
            "{}",
            unsubscribe[0]
        );
        assert_eq!(named("List-Unsubscribe-Post").len(), 1, "{lines:#?}");
        let parsed = mail_parser::MessageParser::default()
            .parse(&message.data)
            .unwrap();
        let subject = parsed.subject().unwrap();
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
        let variant = if subject.starts_with("A Eve") {
            assert!(subject.contains("attacker@evil.example"), "{subject}");
            assert!(named("From")[0].contains("Example News"));
            "A"
        } else {
            assert!(subject.starts_with("B X"), "{subject}");
            assert!(named("From")[0].contains("Shop Team"), "{lines:#?}");
            "B"
        };
        assert!(subject.contains("Reply-To: evil@evil.example"), "{subject}");
        variants.insert(variant);
    }
    assert_eq!(variants.len(), 2, "both variants went out: {variants:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_caps_connections_still_gets_the_whole_campaign() {
    // The relay takes 2 connections at once; the campaign asks for 6.
    let setup = Setup {
        connections: 6,
        max_connections: Some(2),
        ..Setup::default()
    };
    let fixture = Fixture::new(setup, &support::list(300, 10)).await;
    let report = fixture.send().await.unwrap();
    assert_eq!(report.counts.delivered, 300, "{:?}", report.counts);
    assert!(support::arrivals(&fixture.sink).values().all(|&n| n == 1));
}

/// The core scenario over every relay flavour: {plain, STARTTLS, implicit TLS} ×
/// {PIPELINING on, off} × {CHUNKING on, off}. Every message arrives once, byte for byte
/// verifiable (a body line starting with a dot survives both DATA and BDAT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_relay_flavour_delivers_the_same_campaign() {
    let records = support::dkim_records();
    for tls in [SinkTls::None, SinkTls::StartTls, SinkTls::Implicit] {
        for pipelining in [true, false] {
            for chunking in [true, false] {
                let setup = Setup {
                    tls,
                    auth: tls != SinkTls::None,
                    pipelining,
                    chunking,
                    ..Setup::default()
                };
                let flavour = format!("{tls:?} pipelining={pipelining} chunking={chunking}");
                let fixture = Fixture::new(setup, &support::list(12, 3)).await;
                let report = fixture.send().await.unwrap();
                assert_eq!(
                    report.counts.delivered, 12,
                    "{flavour}: {:?}",
                    report.counts
                );
                let received = fixture.sink.wait_for(12, LIMIT).await.unwrap();
                assert!(
                    support::arrivals(&fixture.sink).values().all(|&n| n == 1),
                    "{flavour}"
                );
                let text = String::from_utf8_lossy(&received[0].data).into_owned();
                assert!(
                    text.contains("\r\n.\r\nA line with a dot above."),
                    "{flavour}: {text}"
                );
                let results = volley::dkim::verify(&received[0].data, &records).await;
                assert!(results.iter().all(|r| r.pass), "{flavour}: {results:?}");
            }
        }
    }
}
