use super::*;

fn columns() -> Vec<String> {
    [
        "email",
        "country",
        "plan",
        "age",
        "signup",
        "first name",
        "tags",
        "other",
    ]
    .map(String::from)
    .to_vec()
}

/// A row with the test columns' values.
fn row(country: &str, plan: &str, age: &str, signup: &str) -> Vec<String> {
    [
        "a@x.example",
        country,
        plan,
        age,
        signup,
        "Ann",
        "news,Sport",
        "",
    ]
    .map(String::from)
    .to_vec()
}

fn filter(text: &str) -> SegmentFilter {
    Segment::parse(text).unwrap().bind(&columns()).unwrap()
}

fn keeps(text: &str, values: &[String]) -> bool {
    filter(text).matches(values)
}

fn error(text: &str) -> SegmentError {
    match Segment::parse(text).and_then(|s| s.bind(&columns())) {
        Ok(_) => panic!("{text:?} should be refused"),
        Err(error) => error,
    }
}

#[test]
fn every_comparison_operator_on_texts_numbers_and_dates() {
    let r = row("DE", "pro", "30", "2026-01-31");
    for (text, want) in [
        ("country == 'DE'", true),
        ("country == \"de\"", true),
        ("country != 'DE'", false),
        ("country < 'FR'", true),
        ("country <= 'de'", true),
        ("country > 'AT'", true),
        ("country >= 'FR'", false),
        ("age == 30", true),
        ("age == 30.0", true),
        ("age != 30", false),
        ("age < 31", true),
        ("age <= 29", false),
        ("age > -1", true),
        ("age >= 30", true),
        ("age < 4", false), // as numbers, not as texts ("30" < "4")
        ("signup == 2026-01-31", true),
        ("signup < 2026-02-01", true),
        ("signup <= 2026-01-30", false),
        ("signup > 2025-12-31", true),
        ("signup >= 2026-02-01", false),
        ("signup != 2026-01-31", false),
        ("30 == age", true),
        ("2026-02-01 > signup", true),
        ("'x' < 'y'", true),
    ] {
        assert_eq!(keeps(text, &r), want, "{text}");
    }
}

#[test]
fn in_contains_and_is_empty() {
    let r = row("DE", "pro", "30", "");
    for (text, want) in [
        ("country in ['FR', 'de']", true),
        ("country in ['FR', 'AT',]", false),
        ("country not in ['FR', 'AT']", true),
        ("age in [29, 30]", true),
        ("signup in [2026-01-31]", false),
        ("tags contains 'sport'", true),
        ("tags contains 'golf'", false),
        ("tags not contains 'golf'", true),
        ("signup is empty", true),
        ("age is empty", false),
        ("age is not empty", true),
        ("`first name` == 'ann'", true),
        ("`other` is empty", true),
    ] {
        assert_eq!(keeps(text, &r), want, "{text}");
    }
}

#[test]
fn a_cell_that_is_not_a_number_or_date_makes_the_comparison_false_whatever_the_operator() {
    let r = row("DE", "pro", "thirty", "soon");
    for text in [
        "age == 30",
        "age != 30",
        "age < 30",
        "age >= 30",
        "signup != 2026-01-01",
        "signup < 2026-01-01",
        "age in [30, 31]",
    ] {
        assert!(!keeps(text, &r), "{text}");
    }
    assert!(keeps("not age == 30", &r));
    assert!(keeps("age not in [30]", &r), "not in: no value matched");
    let empty = row("DE", "pro", "", "");
    assert!(!keeps("age != 30", &empty));
    for bad in ["1,000", "1e3", "12abc", "--1", "."] {
        assert!(!keeps("age > 0", &row("", "", bad, "")), "{bad}");
    }
    assert!(keeps("age > 0", &row("", "", "+1.5", "")));
}

#[test]
fn a_date_cell_may_carry_a_time_which_is_ignored() {
    assert!(keeps(
        "signup == 2026-01-31",
        &row("", "", "", "2026-01-31T10:00:00Z")
    ));
    assert!(keeps(
        "signup == 2026-01-31",
        &row("", "", "", "2026-01-31 23:59")
    ));
    assert!(!keeps(
        "signup == 2026-01-31",
        &row("", "", "", "2026-01-31x")
    ));
    assert!(!keeps(
        "signup == 2026-01-31",
        &row("", "", "", "31/01/2026")
    ));
}

#[test]
fn two_columns_compare_as_dates_then_numbers_then_texts() {
    let cols: Vec<String> = ["email", "a", "b"].map(String::from).to_vec();
    let f = Segment::parse("a < b").unwrap().bind(&cols).unwrap();
    let r = |a: &str, b: &str| vec!["e@x.example".to_owned(), a.to_owned(), b.to_owned()];
    assert!(f.matches(&r("2026-01-02", "2026-01-10")));
    assert!(f.matches(&r("4", "30")), "numbers, not texts");
    assert!(f.matches(&r("Apple", "banana")), "texts without case");
    assert!(!f.matches(&r("b", "A")));
}

#[test]
fn and_binds_tighter_than_or_and_not_tighter_than_and() {
    let de_free = row("DE", "free", "30", "");
    let fr_pro = row("FR", "pro", "30", "");
    // or(country == FR, and(country == DE, plan != free))
    assert!(keeps(
        "country == 'FR' or country == 'DE' and plan != 'free'",
        &fr_pro
    ));
    assert!(!keeps(
        "country == 'FR' or country == 'DE' and plan != 'free'",
        &de_free
    ));
    assert!(!keeps(
        "(country == 'FR' or country == 'DE') and plan != 'free'",
        &de_free
    ));
    assert!(keeps(
        "(country == 'FR' or country == 'DE') and plan == 'free'",
        &de_free
    ));
    // not(country == DE) and plan == free: false for DE
    assert!(!keeps("not country == 'DE' and plan == 'free'", &de_free));
    assert!(keeps("not (country == 'DE' and plan == 'pro')", &de_free));
    assert!(keeps("not not country == 'DE'", &de_free));
    assert!(keeps(
        "country == 'DE' AND plan == 'free' Or age > 99",
        &de_free
    ));
    assert!(keeps("((age == 30))", &de_free));
}

#[test]
fn quoted_texts_take_escapes_and_either_quote() {
    let cols: Vec<String> = ["email", "name"].map(String::from).to_vec();
    let r = vec!["e@x.example".to_owned(), "O'Brien \"Bo\"".to_owned()];
    for text in [r#"name == 'o\'brien "bo"'"#, r#"name == "O'Brien \"Bo\"""#] {
        assert!(
            Segment::parse(text)
                .unwrap()
                .bind(&cols)
                .unwrap()
                .matches(&r),
            "{text}"
        );
    }
}

#[test]
fn an_unknown_column_names_itself_and_its_position() {
    let e = error("country == 'DE' and contry != 'x'");
    assert_eq!(e.position(), 21);
    let text = e.to_string();
    assert!(
        text.starts_with("at character 21: unknown column \"contry\""),
        "{text}"
    );
    assert!(text.contains("email, country, plan"), "{text}");
    let e = error("Country == 'DE'");
    assert!(e.to_string().contains("did you mean \"country\"?"), "{e}");
    // Positions count characters, not bytes.
    assert_eq!(error("country == 'Ü' or zz == 1").position(), 19);
}

#[test]
fn type_errors_name_the_position_and_the_column() {
    let e = error("'x' < 3");
    assert_eq!(e.position(), 5);
    assert!(
        e.to_string()
            .contains("cannot compare the text \"x\" with the number 3"),
        "{e}"
    );
    let e = error("age in [1, 'two']");
    assert_eq!(e.position(), 12);
    let e = error("'DE' in [1]");
    assert_eq!(e.position(), 10);
    let e = error("age contains 3");
    assert_eq!(e.position(), 14);
    let e = error("'x' is empty");
    assert_eq!(e.position(), 1);
    let e = error("age in [country]");
    assert!(
        matches!(e, SegmentError::Type { position: 9, ref column, .. } if column.as_deref() == Some("country")),
        "{e:?}"
    );
    let e = error("2026-01-01 == 'x'");
    assert_eq!(e.position(), 12);
}

#[test]
fn syntax_errors_name_their_position() {
    for (text, position, says) in [
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("country = 'DE'", 9, "=="),
        ("country ! 'DE'", 9, "!="),
        ("country == 'DE", 12, "not closed"),
        (
            "country == ",
            12,
            "expected a column or a value, found the end",
        ),
        ("country 'DE'", 9, "expected an operator"),
        ("country == 'DE' plan", 17, "unexpected column"),
        ("(country == 'DE'", 17, "the ) closing the ( at character 1"),
        ("country == 'DE')", 16, "unexpected )"),
        ("country in 'DE'", 12, "a list in [ ]"),
        ("country in []", 13, "a column or a value"),
        ("country in ['a' 'b']", 17, ", or ]"),
        ("country is 'x'", 12, "empty"),
        ("country not == 'x'", 13, "in or contains after not"),
        ("age > 3x", 7, "neither a number nor a date"),
        ("age > 1.2.3", 7, "not a number"),
        ("country == 'a' and", 19, "found the end"),
        (
            "country == 'a' && plan == 'b'",
            16,
            "unexpected character '&'",
        ),
        ("`` == 'a'", 1, "empty column name"),
        ("`name == 'a'", 1, "not closed"),
    ] {
        let e = error(text);
        assert_eq!(e.position(), position, "{text}: {e}");
        assert!(e.to_string().contains(says), "{text}: {e}");
    }
}

#[test]
fn malformed_dates_are_refused_with_their_position() {
    for (text, position) in [
        ("signup < 2026-02-30", 10),
        ("signup < 2026-13-01", 10),
        ("signup < 2026-1-01", 10),
        ("signup in [2026-01-01, 2026-02-31]", 24),
    ] {
        let e = error(text);
        assert!(matches!(e, SegmentError::BadDate { .. }), "{text}: {e}");
        assert_eq!(e.position(), position, "{text}");
    }
}

#[test]
fn reserved_words_are_columns_in_backticks() {
    let cols: Vec<String> = ["email", "in", "empty"].map(String::from).to_vec();
    let f = Segment::parse("`in` == 'x' and `EMPTY` is empty");
    assert!(
        f.unwrap().bind(&cols).is_err(),
        "column names keep their case"
    );
    let f = Segment::parse("`in` == 'x' and `empty` is empty").unwrap();
    let r: Vec<String> = ["e@x.example", "X", ""].map(String::from).to_vec();
    assert!(f.bind(&cols).unwrap().matches(&r));
    assert!(Segment::parse("in == 'x'").is_err());
}

#[test]
fn long_chains_stay_flat_and_deep_nesting_is_refused() {
    let chain = vec!["age == 1"; 5_000].join(" or ");
    assert!(!keeps(&chain, &row("", "", "2", "")));
    assert!(keeps(&(chain + " or age == 2"), &row("", "", "2", "")));
    // 63 parentheses and the predicate inside them: 64 levels.
    let deep = format!("{}age == 1{}", "(".repeat(63), ")".repeat(63));
    assert!(Segment::parse(&deep).is_ok());
    let deeper = format!("{}age == 1{}", "(".repeat(64), ")".repeat(64));
    let e = Segment::parse(&deeper).unwrap_err();
    assert_eq!(e.position(), 65, "{e}");
    assert!(Segment::parse(&"not ".repeat(10_000)).is_err());
}

proptest::proptest! {
    #[test]
    fn any_text_parses_or_is_refused_without_a_panic(text in "\\PC{0,80}") {
        if let Ok(segment) = Segment::parse(&text) {
            if let Ok(filter) = segment.bind(&columns()) {
                filter.matches(&row("DE", "pro", "30", "2026-01-31"));
            }
        }
    }

    #[test]
    fn texts_of_the_language_parse_or_are_refused_without_a_panic(
        words in proptest::collection::vec(
            proptest::sample::select(vec![
                "country", "age", "signup", "==", "!=", "<", ">=", "and", "or", "not", "in",
                "contains", "is", "empty", "(", ")", "[", "]", ",", "'DE'", "30", "-1.5",
                "2026-01-31", "2026-02-30", "`first name`", "zz", "\"x\"",
            ]),
            0..24,
        )
    ) {
        let text = words.join(" ");
        if let Ok(segment) = Segment::parse(&text) {
            if let Ok(filter) = segment.bind(&columns()) {
                filter.matches(&row("DE", "pro", "", "soon"));
            }
        }
    }
}
