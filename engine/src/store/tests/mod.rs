//! The store's test suite, written once against the interface and run on every engine: each
//! case is a function taking a [`Place`] (a fresh, empty store of one engine that can be
//! opened again and again), and [`suite!`] makes one `#[test]` per case per engine. A new
//! engine adds itself to [`suite!`] with a function making its places.

use super::*;
use crate::model::{Counts, Millis, ReplyRecord};

mod ab;
mod append;
mod blocks;
mod concurrent;
mod conversions;
mod core;
mod documents;
mod due;
mod events;
mod gc;
mod holdout;
mod relays;
mod topics;
mod transfer;
mod views;
mod waiting;
mod warmup;
mod webhooks;

/// A fresh store of one engine: opened (and, dropped, reopened) as often as a case needs.
/// Loads campaign `campaign` with one column (`email`, the address itself): each address
/// with its assignment, in the domain after its `@`, from CSV line 2 on.
pub(super) fn load_list(
    store: &Store,
    campaign: &str,
    rows: impl IntoIterator<Item = (String, crate::model::Assignment)>,
) {
    let mut loader = store.start_load(campaign, vec!["email".into()]).unwrap();
    for (i, (address, assignment)) in rows.into_iter().enumerate() {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
        let values = vec![address.clone()];
        loader
            .add(&address, &domain, values, i as u64 + 2, assignment)
            .unwrap();
    }
    loader.finish(0, 0, 0).unwrap();
}

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

/// A PostgreSQL store: a fresh database of the throwaway cluster the tests of this binary
/// share (started by the first, stopped when the last one is done).
pub(super) fn postgres_place() -> Place {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cluster = crate::store::postgres::tests::cluster();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let url = cluster
        .create_database(&format!("suite_{n}"))
        .unwrap_or_else(|e| panic!("{e}"));
    Place {
        open: Box::new(move || Store::open(std::path::Path::new(&url)).unwrap()),
        _hold: Box::new(cluster),
    }
}

/// One `#[test]` per case per engine: `suite!(case_a, case_b)` in a module of cases.
/// Cases that need what the PostgreSQL engine does not do yet are listed after
/// `sled_only:` (`suite!(case_a; sled_only: case_b)`); they move up as it learns them.
macro_rules! suite {
    ($($case:ident),* $(,)? $(; sled_only: $($only:ident),* $(,)?)?) => {
        mod sled {
            $(
                #[test]
                fn $case() {
                    super::$case(&crate::store::tests::sled_place())
                }
            )*
            $($(
                #[test]
                fn $only() {
                    super::$only(&crate::store::tests::sled_place())
                }
            )*)?
        }
        mod postgres {
            $(
                #[test]
                fn $case() {
                    super::$case(&crate::store::tests::postgres_place())
                }
            )*
        }
    };
}
pub(super) use suite;
