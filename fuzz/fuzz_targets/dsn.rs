//! The bounce (DSN, ARF, non-standard text) parser over arbitrary bytes.
//!
//! mail-parser has a `debug_assert!` that malformed multipart bodies trip (this target found
//! one); `parse_message` catches a panic in mail-parser and reads the message as unreadable.
//! libfuzzer-sys's panic hook would abort before that, so panics raised inside mail-parser
//! pass through quietly here; any other panic still aborts and is reported as a crash.
#![no_main]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use libfuzzer_sys::fuzz_target;
use volley::bounce::{parse_message, Classifier, ReportKind};

fn let_mail_parser_panics_unwind() {
    static HOOK: Once = Once::new();
    static NOTED: AtomicBool = AtomicBool::new(false);
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_mail_parser {
                fuzzer_hook(info);
            } else if !NOTED.swap(true, Ordering::Relaxed) {
                eprintln!("note: mail-parser panicked (caught by parse_message): {info}");
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    let_mail_parser_panics_unwind();
    let classifier = CLASSIFIER.get_or_init(Classifier::builtin);
    let report = parse_message(data, classifier);
    if report.kind == ReportKind::NotABounce {
        assert!(report.recipients.is_empty(), "{report:?}");
    }
});
