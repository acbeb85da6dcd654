//! Embeds the migrations again whenever one is added or changed: `sqlx::migrate!` reads the
//! folder at compile time but cannot tell cargo to watch it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
