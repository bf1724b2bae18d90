//! TEMPORARY stand-in, replaced by the real rules at merge.

use crate::model::Category;

/// A failure's category and whether it is hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// The category.
    pub category: Category,
    /// Hard (suppress) or soft.
    pub hard: bool,
}

/// Classifies replies.
#[derive(Debug, Clone, Default)]
pub struct Classifier;

impl Classifier {
    /// The shipped rules.
    pub fn builtin() -> Classifier {
        Classifier
    }

    /// Classifies one failure.
    pub fn classify(&self, code: Option<u16>, enhanced: Option<&str>, _text: &str) -> Classification {
        let hard = code.map_or(enhanced.is_some_and(|e| e.starts_with('5')), |c| c >= 500);
        Classification { category: Category::Other, hard }
    }
}
