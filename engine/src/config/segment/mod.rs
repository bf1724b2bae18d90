//! Segments: the `[campaign] where` expression that picks which rows of the list are loaded.
//!
//! A small language over the list's columns, parsed by hand (`lexer`, `parser`) and bound to
//! the list's header (`eval`) before any row is read:
//!
//! - comparisons `== != < <= > >=`, `and`, `or`, `not`, parentheses (precedence, loosest
//!   first: `or`, `and`, `not`);
//! - `col in ['a', 'b']`, `col not in [...]`, `col contains 'x'`, `col not contains 'x'`,
//!   `col is empty`, `col is not empty`;
//! - literals: texts in single or double quotes (a backslash escapes the next character),
//!   numbers (`42`, `-3.5`), dates (`2026-01-31`); a column is its header name, in backticks
//!   when it is not a plain word (`` `first name` ``) or is a reserved word.
//!
//! Cells are texts. Against a text, a cell compares as text without case (`'de' == 'DE'`).
//! Against a number or a date, the cell is read as one (a number: optional sign, digits,
//! optional fraction; a date: `YYYY-MM-DD`, a time after it ignored); a cell that does not
//! read so (an empty one too) makes that comparison false, whatever the operator, so
//! `age != 30` leaves out a row without an age. Two columns compare as dates when both
//! cells are dates, else as numbers when both are numbers, else as texts. Two literals of
//! different kinds (`'x' < 3`) are a type error.

mod error;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

pub use error::SegmentError;

/// A parsed `where` expression, not yet tied to a list's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    text: String,
    expr: parser::Expr,
}

/// A segment bound to one list's columns: evaluates rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFilter {
    bound: eval::Bound,
}

impl Segment {
    /// Parses `text`; syntax errors and malformed dates name their 1-based position.
    pub fn parse(text: &str) -> Result<Segment, SegmentError> {
        Ok(Segment {
            text: text.to_owned(),
            expr: parser::parse(text)?,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Ties the expression to the list's `columns` (as `RecipientReader`
    /// names them): an unknown column or a type error is found here, with its position.
    pub fn bind(&self, columns: &[String]) -> Result<SegmentFilter, SegmentError> {
        Ok(SegmentFilter {
            bound: eval::bind(&self.expr, columns)?,
        })
    }
}

impl SegmentFilter {
    /// Whether a row (its values aligned with the bound columns) is in the segment.
    pub fn matches(&self, values: &[String]) -> bool {
        self.bound.matches(values)
    }
}
