//! The recipients CSV reader over arbitrary bytes: a header error, or one row or row error
//! per record, with the row's fields aligned to the header and sensible line numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley::campaign::RecipientReader;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let Ok(reader) = RecipientReader::from_reader(std::io::Cursor::new(data.to_vec()), "f.csv")
    else {
        return;
    };
    let columns = reader.columns().len();
    let email = reader.email_index();
    assert!(email < columns);
    let mut last = 0;
    for item in reader {
        let line = match item {
            Ok(row) => {
                assert_eq!(row.values.len(), columns);
                assert_eq!(row.values[email], row.email);
                assert!(row.email.ends_with(&format!("@{}", row.domain)), "{row:?}");
                row.line
            }
            Err(err) => err.line,
        };
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        assert!(line >= last, "line {line} after {last}");
        last = line;
    }
});
