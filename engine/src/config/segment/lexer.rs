//! Splitting a `where` expression into tokens, each with its 1-based character position.

use super::error::SegmentError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// The operator as written.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A reserved word (matched without case; a column of that name is written in backticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Word {
    And,
    Or,
    Not,
    In,
    Contains,
    Is,
    Empty,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A column name (bare, or in backticks).
    Ident(String),
    /// A reserved word.
    Word(Word),
    /// A string literal, quotes removed and escapes resolved.
    Str(String),
    /// A number literal.
    Num(f64),
    /// A date literal `YYYY-MM-DD`.
    Date(chrono::NaiveDate),
    /// A comparison operator.
    Cmp(Cmp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

/// A token and where it starts (1-based, in characters).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) position: usize,
}

/// Splits `text` into tokens.
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, SegmentError> {
    let chars: Vec<char> = text.chars().collect();
    let mut lexer = Lexer { chars, at: 0 };
    let mut out = Vec::new();
    while let Some(token) = lexer.next_token()? {
        out.push(token);
    }
    Ok(out)
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

fn ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn next_token(&mut self) -> Result<Option<Token>, SegmentError> {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let position = self.at + 1;
        let tok = match c {
            '(' | ')' | '[' | ']' | ',' => {
                self.at += 1;
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    _ => Tok::Comma,
                }
            }
            '=' | '!' | '<' | '>' => Tok::Cmp(self.operator(c, position)?),
            '\'' | '"' => Tok::Str(self.quoted(c, position, "string")?),
            '`' => Tok::Ident(self.quoted('`', position, "column name")?),
            c if c.is_ascii_digit()
                || (c == '-' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.number(position)?
            }
            c if ident_start(c) => self.word(),
            other => {
                return Err(SegmentError::syntax(
                    position,
                    format!("unexpected character {other:?}"),
                ))
            }
        };
        Ok(Some(Token { tok, position }))
    }

    fn operator(&mut self, first: char, position: usize) -> Result<Cmp, SegmentError> {
        let double = self.peek(1) == Some('=');
        self.at += if double { 2 } else { 1 };
        match (first, double) {
            ('=', true) => Ok(Cmp::Eq),
            ('!', true) => Ok(Cmp::Ne),
            ('<', true) => Ok(Cmp::Le),
            ('>', true) => Ok(Cmp::Ge),
            ('<', false) => Ok(Cmp::Lt),
            ('>', false) => Ok(Cmp::Gt),
            ('=', false) => Err(SegmentError::syntax(
                position,
                "a single = is not an operator: write == to compare",
            )),
            _ => Err(SegmentError::syntax(
                position,
                "a single ! is not an operator: write != or not",
            )),
        }
    }

    /// A quoted text; a backslash escapes the next character.
    fn quoted(&mut self, quote: char, position: usize, what: &str) -> Result<String, SegmentError> {
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek(0) {
                None => {
                    return Err(SegmentError::syntax(
                        position,
                        format!("{what} opened here is not closed with {quote}"),
                    ))
                }
                Some('\\') if self.peek(1).is_some() => {
                    text.extend(self.peek(1));
                    self.at += 2;
                }
                Some(c) if c == quote => {
                    self.at += 1;
                    break;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
        if what == "column name" && text.trim().is_empty() {
            return Err(SegmentError::syntax(position, "empty column name"));
        }
        Ok(text)
    }

    /// A number (`42`, `-3.5`) or a date (`2026-01-31`).
    fn number(&mut self, position: usize) -> Result<Tok, SegmentError> {
        let start = self.at;
        if self.peek(0) == Some('-') {
            self.at += 1;
        }
        while self
            .peek(0)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | '-'))
        {
            self.at += 1;
        }
        if self.peek(0).is_some_and(ident_char) {
            while self.peek(0).is_some_and(ident_char) {
                self.at += 1;
            }
            let text: String = self.chars[start..self.at].iter().collect();
            return Err(SegmentError::syntax(
                position,
                format!("{text} is neither a number nor a date; quote a text, backquote a column"),
            ));
        }
        let text: String = self.chars[start..self.at].iter().collect();
        if text.len() > 4 && text[4..].starts_with('-') && !text.starts_with('-') {
            return date(&text, position).map(Tok::Date);
        }
        let plain = text
            .strip_prefix('-')
            .unwrap_or(&text)
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
        match text.parse::<f64>() {
            Ok(n) if plain && n.is_finite() => Ok(Tok::Num(n)),
            _ => Err(SegmentError::syntax(
                position,
                format!("{text} is not a number"),
            )),
        }
    }

    fn word(&mut self) -> Tok {
        let start = self.at;
        while self.peek(0).is_some_and(ident_char) {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().collect();
        let word = match text.to_ascii_lowercase().as_str() {
            "and" => Word::And,
            "or" => Word::Or,
            "not" => Word::Not,
            "in" => Word::In,
            "contains" => Word::Contains,
            "is" => Word::Is,
            "empty" => Word::Empty,
            _ => return Tok::Ident(text),
        };
        Tok::Word(word)
    }
}

/// A date literal: exactly `YYYY-MM-DD`, and a day of the calendar.
fn date(text: &str, position: usize) -> Result<chrono::NaiveDate, SegmentError> {
    let shaped = text.len() == 10
        && text.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let bad = || SegmentError::BadDate {
        position,
        text: text.to_owned(),
    };
    if !shaped {
        return Err(bad());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())
}

/// A cell read as a date: `YYYY-MM-DD`, optionally followed by a time (`T…` or ` …`),
/// which is ignored.
pub(super) fn cell_date(cell: &str) -> Option<chrono::NaiveDate> {
    let day = cell.get(..10)?;
    let rest = &cell[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    date(day, 0).ok()
}

/// A cell read as a number: an optional sign, digits, an optional fraction (surrounding
/// spaces were trimmed by the reader). Thousands separators and exponents are not numbers.
pub(super) fn cell_number(cell: &str) -> Option<f64> {
    let digits = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let shaped = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if !shaped {
        return None;
    }
    cell.parse::<f64>().ok().filter(|n| n.is_finite())
}
