//! Rebuilds the engine when a migration is added to `migrations/` (sqlx's `migrate!` embeds
//! them; an edited file is tracked, a new one is not).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
