//! Compose benchmarks: render + MIME-build a ~10 KB personalised HTML+text message, unsigned,
//! and signed with RSA-2048 or Ed25519 (the fixture keys in `fixtures/dkim/`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use volley::compose::{Composer, Mailbox, MessageSettings, TemplateSource, Templates};
use volley::dkim::{DkimKey, Signer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/dkim")
        .join(name)
}

/// About 6 KB of text and 5 KB of HTML, with merge fields sprinkled through; with
/// `html_only`, the HTML alone (its text part then generated, or absent).
fn templates(html_only: bool) -> Templates {
    let paragraph = "We have picked a few things we think you will like this week, \
                     {{ first_name }}. Take a look before they are gone.";
    let text: String = (0..40)
        .map(|i| format!("{i}. {paragraph}\n"))
        .collect::<String>()
        + "Your code: {{ code }}\nUnsubscribe: https://example.com/u/{{ token }}\n";
    let html: String = String::from("<html><body><h1>Hello {{ first_name }}</h1>\n")
        + &(0..35)
            .map(|i| format!("<p class=\"item\">{i}. {paragraph}</p>\n"))
            .collect::<String>()
        + "<p>Your code: <b>{{ code }}</b> in {{ city }}. \
           <a href=\"https://example.com/shop?c={{ code }}\">Shop now</a>, or \
           <a href=\"https://example.com/u/{{ token }}\">unsubscribe</a>.</p></body></html>\n";
    Templates::new(
        "{{ first_name }}, your weekly picks",
        (!html_only).then(|| TemplateSource {
            name: "weekly.txt".to_owned(),
            source: text,
        }),
        Some(TemplateSource {
            name: "weekly.html".to_owned(),
            source: html,
        }),
    )
    .unwrap()
}

fn composer(signer: Option<Signer>) -> Composer {
    composer_of(templates(false), signer)
}

fn composer_of(templates: Templates, signer: Option<Signer>) -> Composer {
    let settings = MessageSettings {
        from: Mailbox {
            name: Some("Example Weekly".to_owned()),
            address: "news@example.com".to_owned(),
        },
        reply_to: None,
        extra_headers: vec![(
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        )],
    };
    Composer::new(templates, settings, signer)
}

fn bench_compose(c: &mut Criterion) {
    let names: Vec<String> = ["email", "first_name", "city", "code", "token"]
        .map(String::from)
        .to_vec();
    let values: Vec<String> = [
        "ann@example.net",
        "Ann",
        "Zürich",
        "SAVE-20",
        "c2FtcGxlLXRva2Vu",
    ]
    .map(String::from)
    .to_vec();
    let rsa = DkimKey::from_file("example.com", "rsa", &fixture("rsa2048.pem")).unwrap();
    let ed = DkimKey::from_file("example.com", "ed", &fixture("ed25519.pem")).unwrap();
    let cases = [
        ("unsigned", composer(None)),
        ("rsa2048", composer(Some(Signer::new(vec![rsa])))),
        ("ed25519", composer(Some(Signer::new(vec![ed])))),
        // HTML only: no text part, then a text part generated from the rendered HTML.
        ("html-only", composer_of(templates(true), None)),
        (
            "html+generated-text",
            composer_of(templates(true), None).text_from_html(true),
        ),
    ];
    let size = cases[0]
        .1
        .compose("ann@example.net", &names, &values)
        .unwrap()
        .bytes
        .len();
    let mut group = c.benchmark_group("compose");
    group.throughput(Throughput::Elements(1));
    for (name, composer) in &cases {
        group.bench_function(format!("{name}/{}B", size), |b| {
            b.iter(|| {
                black_box(
                    composer
                        .compose(black_box("ann@example.net"), &names, &values)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compose);
criterion_main!(benches);
