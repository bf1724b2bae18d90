//! TEMPORARY stand-in for the real classifier (written elsewhere): 5xx is hard, 4xx soft,
//! every category is `Other`. Dropped at merge.

use crate::model::Category;

/// What a failure means for the recipient.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Classification {
    /// Why it failed.
    pub category: Category,
    /// Whether the address should be suppressed.
    pub hard: bool,
}

/// Maps SMTP replies to categories.
#[derive(Clone, Debug, Default)]
pub struct Classifier;

impl Classifier {
    /// The built-in rules.
    pub fn builtin() -> Classifier {
        Classifier
    }

    /// Classifies a reply code, enhanced status code and text.
    pub fn classify(
        &self,
        code: Option<u16>,
        enhanced: Option<&str>,
        _text: &str,
    ) -> Classification {
        let class = code.map(|c| c / 100).or_else(|| {
            enhanced
                .and_then(|e| e.chars().next())
                .and_then(|c| c.to_digit(10))
                .map(|d| d as u16)
        });
        Classification {
            category: Category::Other,
            hard: class == Some(5),
        }
    }
}
