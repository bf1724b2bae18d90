//! Reader tests over the shipped fixtures, inline edge cases and a large generated list.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/lists")
        .join(name)
}

fn read_str(text: &str) -> Result<RecipientReader, CampaignError> {
    RecipientReader::from_reader(std::io::Cursor::new(text.as_bytes().to_vec()), "list.csv")
}

#[test]
fn the_good_list_reads_in_full() {
    let reader = RecipientReader::open(&fixture("recipients.csv")).unwrap();
    assert_eq!(reader.columns(), ["email", "first_name", "city"]);
    let rows: Vec<Row> = reader.map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        (2..=11).collect::<Vec<_>>()
    );
    assert_eq!(rows[4].email, "Eve.Stone@example.com");
    assert_eq!(rows[4].domain, "example.com");
    assert_eq!(rows[4].values, ["Eve.Stone@example.com", "Eve", "Dublin"]);
    assert_eq!(rows[6].values[2], "Washington, D.C.");
    assert_eq!(rows[9].values[1], "Zoë");
}

/// A row as the test sees it: `Ok((line, email))` or `Err((line, field, reason))`.
type Outcome = Result<(u64, String), (u64, Option<String>, String)>;

#[test]
fn the_broken_list_reports_each_bad_row_and_keeps_going() {
    let path = fixture("broken.csv");
    let reader = RecipientReader::open(&path).unwrap();
    assert_eq!(reader.columns(), ["email", "first_name", "city"]);
    let got: Vec<Outcome> = reader
        .map(|item| match item {
            Ok(row) => Ok((row.line, row.email)),
            Err(e) => Err((e.line, e.field, e.reason)),
        })
        .collect();
    let email = || Some("email".to_owned());
    let want = vec![
        Ok((2, "ann@example.com".to_owned())),
        Err((3, email(), "missing @".to_owned())),
        Err((4, email(), "invalid domain name".to_owned())),
        Err((5, email(), "local part too long (65 > 64)".to_owned())),
        Err((6, None, "expected 3 fields, found 4".to_owned())),
        Ok((7, "eve@example.com".to_owned())),
        Err((
            9,
            Some("first_name".to_owned()),
            "not valid UTF-8".to_owned(),
        )),
        Ok((11, "gus@xn--bcher-kva.example".to_owned())),
        Ok((12, "ann@example.com".to_owned())),
        Err((13, None, "expected 3 fields, found 2".to_owned())),
        Ok((14, "ivy@example.org".to_owned())),
    ];
    assert_eq!(got, want);
}

#[test]
fn row_errors_read_like_a_sentence() {
    let path = fixture("broken.csv");
    let errors: Vec<String> = RecipientReader::open(&path)
        .unwrap()
        .filter_map(Result::err)
        .map(|e| {
            e.to_string()
                .replace(&path.display().to_string(), "broken.csv")
        })
        .take(4)
        .collect();
    assert_eq!(
        errors,
        [
            "broken.csv line 3, field email: missing @",
            "broken.csv line 4, field email: invalid domain name",
            "broken.csv line 5, field email: local part too long (65 > 64)",
            "broken.csv line 6: expected 3 fields, found 4",
        ]
    );
}

#[test]
fn multi_line_field_keeps_its_text_and_later_lines_stay_right() {
    let rows: Vec<Row> = RecipientReader::open(&fixture("broken.csv"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(rows[1].values, ["eve@example.com", "Eve\nMarie", "Nice"]);
    assert_eq!(rows[2].domain, "xn--bcher-kva.example");
}

#[test]
fn header_problems_are_errors() {
    let cases = [
        (
            "",
            "list.csv: the file is empty: a header row with an email column is required",
        ),
        (
            "name,city\nann,Lisbon\n",
            "list.csv line 1: no email column in the header (found: name, city)",
        ),
        (
            "email,name,Name\n",
            "list.csv line 1: column 3 repeats the name \"Name\" of column 2",
        ),
        (
            "Email,EMAIL\n",
            "list.csv line 1: column 2 repeats the name \"EMAIL\" of column 1",
        ),
        (
            "email,,city\n",
            "list.csv line 1: column 2 of the header has no name",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(
            read_str(text).unwrap_err().to_string(),
            want,
            "for {text:?}"
        );
    }
    let bad =
        RecipientReader::from_reader(std::io::Cursor::new(b"email,n\xffme\n".to_vec()), "x.csv");
    assert_eq!(
        bad.unwrap_err().to_string(),
        "x.csv line 1: column 2 of the header is not valid UTF-8"
    );
}

#[test]
fn missing_file_is_named() {
    let err = RecipientReader::open(Path::new("/nonexistent/list.csv")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/list.csv: cannot open recipients file"),
        "{err}"
    );
}

#[test]
fn email_column_can_be_anywhere_and_blank_lines_are_skipped() {
    let text =
        "\u{feff}name, EMAIL \r\nAnn, ann@example.com \r\n\r\n   \r\n,\r\nBob,bob@example.com";
    let reader = read_str(text).unwrap();
    assert_eq!(reader.columns(), ["name", "email"]);
    assert_eq!(reader.email_index(), 1);
    let rows: Vec<Row> = reader.map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].line, rows[0].values.clone()),
        (2, vec!["Ann".to_owned(), "ann@example.com".to_owned()])
    );
    assert_eq!(
        (rows[1].line, rows[1].email.as_str()),
        (6, "bob@example.com")
    );
}

/// Line numbers (and last-column values) across line endings, blank lines, quoted
/// newlines and a missing final newline.
#[test]
fn line_numbers_survive_every_layout() {
    let cases: &[(&str, &[(u64, &str)])] = &[
        (
            "email,n\na@x.example,1\nb@x.example,2\n",
            &[(2, "1"), (3, "2")],
        ),
        (
            "email,n\na@x.example,1\nb@x.example,2",
            &[(2, "1"), (3, "2")],
        ),
        (
            "email,n\r\na@x.example,1\r\nb@x.example,2\r\n",
            &[(2, "1"), (3, "2")],
        ),
        (
            "email,n\r\na@x.example,1\r\nb@x.example,2",
            &[(2, "1"), (3, "2")],
        ),
        (
            "email,n\n\n\na@x.example,1\n\n\nb@x.example,2\n\n",
            &[(4, "1"), (7, "2")],
        ),
        (
            "email,n\r\n\r\na@x.example,1\r\n\r\nb@x.example,2",
            &[(3, "1"), (5, "2")],
        ),
        (
            "email,n\na@x.example,\"1\n\n1\"\nb@x.example,2",
            &[(2, "1\n\n1"), (5, "2")],
        ),
        (
            "email,n\r\na@x.example,\"1\r\n1\"\r\nb@x.example,\"2\"\r\n",
            &[(2, "1\r\n1"), (4, "2")],
        ),
        ("email,\"first\nname\"\na@x.example,1\n", &[(3, "1")]),
    ];
    for (text, want) in cases {
        let got: Vec<(u64, String)> = read_str(text)
            .unwrap()
            .map(|r| r.map(|row| (row.line, row.values[1].clone())).unwrap())
            .collect();
        let want: Vec<(u64, String)> = want.iter().map(|(l, v)| (*l, v.to_string())).collect();
        assert_eq!(got, want, "for {text:?}");
    }
}

#[test]
fn bad_utf8_in_the_email_column_names_it() {
    let data = b"name,email\nAnn,ann\xc3@example.com\nBob,bob@example.com\n".to_vec();
    let reader = RecipientReader::from_reader(std::io::Cursor::new(data), "l.csv").unwrap();
    let got: Vec<String> = reader
        .map(|r| r.map(|row| row.email).unwrap_or_else(|e| e.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            "l.csv line 2, field email: not valid UTF-8",
            "bob@example.com"
        ]
    );
}

#[test]
fn the_domain_is_lowercased_and_the_local_part_kept_so_the_store_can_spot_duplicates() {
    let text = "email\nAnn@Example.com\nAnn@EXAMPLE.COM\nann@example.com\n";
    let got: Vec<String> = read_str(text).unwrap().map(|r| r.unwrap().email).collect();
    assert_eq!(
        got,
        ["Ann@example.com", "Ann@example.com", "ann@example.com"]
    );
}

/// Counts how many bytes the reader has pulled from its source.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_hundred_thousand_rows_stream() {
    const ROWS: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut out = std::io::BufWriter::new(File::create(&path).unwrap());
    writeln!(out, "email,first_name,city").unwrap();
    for i in 0..ROWS {
        writeln!(out, "user{i}@d{}.example,User {i},City {}", i % 97, i % 13).unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();

    let read = Arc::new(AtomicU64::new(0));
    let source = Counting {
        inner: File::open(&path).unwrap(),
        read: Arc::clone(&read),
    };
    let mut reader = RecipientReader::from_reader(source, &path).unwrap();
    let first = reader.next().unwrap().unwrap();
    assert_eq!((first.line, first.email.as_str()), (2, "user0@d0.example"));
    let after_first = read.load(Ordering::Relaxed);
    assert!(
        after_first < 256 * 1024 && after_first < size / 10,
        "read {after_first} of {size} bytes before the first row"
    );
    let mut count = 1;
    let mut last_line = 0;
    for row in reader {
        let row = row.unwrap();
        count += 1;
        last_line = row.line;
    }
    assert_eq!(count, ROWS);
    assert_eq!(last_line, ROWS + 1);
    assert_eq!(read.load(Ordering::Relaxed), size);
}

/// Reads `bytes` to the end: every row lines up with the header, every line number points
/// into the input and they never go backwards.
fn check_any_list(bytes: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let Ok(reader) = RecipientReader::from_reader(std::io::Cursor::new(bytes.to_vec()), "l.csv")
    else {
        return Ok(());
    };
    let (columns, email) = (reader.columns().len(), reader.email_index());
    let mut last = 0;
    for item in reader {
        let line = match item {
            Ok(row) => {
                proptest::prop_assert_eq!(row.values.len(), columns);
                proptest::prop_assert_eq!(&row.values[email], &row.email);
                let at_domain = format!("@{}", row.domain);
                proptest::prop_assert!(row.email.ends_with(&at_domain), "{:?}", row);
                row.line
            }
            Err(err) => {
                proptest::prop_assert!(!err.to_string().is_empty());
                err.line
            }
        };
        proptest::prop_assert!((1..=lines).contains(&line), "line {} of {}", line, lines);
        proptest::prop_assert!(line >= last, "line {} after {}", line, last);
        last = line;
    }
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 128, ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_give_rows_or_row_errors(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
    ) {
        check_any_list(&bytes)?;
    }

    #[test]
    fn any_csv_shaped_text_gives_rows_or_row_errors(
        header in "(email|EMAIL |name|city|x)(,(email|name|city| x\u{feff}|))*",
        body in "[a-z@.,\"\r\n \u{e9}\u{feff}-]{0,200}",
    ) {
        check_any_list(format!("{header}\n{body}").as_bytes())?;
    }
}
