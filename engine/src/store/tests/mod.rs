//! The store's test suite, written once against the interface and run on every engine: each
//! case is a function taking a [`Place`] (a fresh, empty store of one engine that can be
//! opened again and again), and [`suite!`] makes one `#[test]` per case per engine. A new
//! engine adds itself to [`suite!`] with a function making its places.

use super::*;
use crate::model::{Counts, Millis, ReplyRecord};

mod core;
mod events;
mod gc;

/// A fresh store of one engine: opened (and, dropped, reopened) as often as a case needs.
pub(super) struct Place {
    open: Box<dyn Fn() -> Store>,
    /// Whatever keeps the place alive (a temp folder), dropped with it.
    _hold: Box<dyn std::any::Any>,
}

impl Place {
    /// Opens the store (again); drop the previous handle first, as a restart would.
    pub(super) fn open(&self) -> Store {
        (self.open)()
    }
}

/// A sled store in a fresh temp folder.
pub(super) fn sled_place() -> Place {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    Place {
        open: Box::new(move || Store::open(&path).unwrap()),
        _hold: Box::new(dir),
    }
}

/// One `#[test]` per case per engine: `suite!(case_a, case_b)` in a module of cases.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sled {
            $(
                #[test]
                fn $case() {
                    super::$case(&crate::store::tests::sled_place())
                }
            )*
        }
    };
}
pub(super) use suite;
