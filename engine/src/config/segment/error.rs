//! The errors of a `[campaign] where` expression: each names the 1-based character position
//! in the expression (and the column, when one is at fault).

/// Why a `where` expression was refused. `Display` reads like `at character 9: unknown
/// column "contry" (the list's columns: email, country, plan)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The expression does not parse.
    #[error("at character {position}: {detail}")]
    Syntax {
        /// 1-based character position.
        position: usize,
        /// What was expected or found.
        detail: String,
    },
    /// A date literal is not a calendar date (`2026-02-30`, `2026-13-01`).
    #[error("at character {position}: {text} is not a date (expected YYYY-MM-DD)")]
    BadDate {
        /// 1-based character position.
        position: usize,
        /// The literal as written.
        text: String,
    },
    /// A column the list does not have.
    #[error(
        "at character {position}: unknown column {column:?}{} (the list's columns: {})",
        .suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default(),
        .known.join(", ")
    )]
    UnknownColumn {
        /// 1-based character position.
        position: usize,
        /// The name as written.
        column: String,
        /// A column of the same name in another case, if there is one.
        suggestion: Option<String>,
        /// The list's columns.
        known: Vec<String>,
    },
    /// Two sides that cannot be compared (`'x' < 3`), or an operator used on the wrong kind
    /// of operand (`contains 3`, `'a' is empty`).
    #[error("at character {position}: {detail}")]
    Type {
        /// 1-based character position.
        position: usize,
        /// The column involved, if any.
        column: Option<String>,
        /// What is wrong.
        detail: String,
    },
}

impl SegmentError {
    /// The 1-based character position in the expression the error points at.
    pub fn position(&self) -> usize {
        match self {
            Self::Syntax { position, .. }
            | Self::BadDate { position, .. }
            | Self::UnknownColumn { position, .. }
            | Self::Type { position, .. } => *position,
        }
    }

    /// A syntax error at `position`.
    pub(super) fn syntax(position: usize, detail: impl Into<String>) -> Self {
        Self::Syntax {
            position,
            detail: detail.into(),
        }
    }
}
