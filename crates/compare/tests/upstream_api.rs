//! The API-surface file of tachyon-compat (`crates/compat/tests/api_surface/items.rs`),
//! compiled against the real crates.io tachyon-ipc 0.5.1: it proves the file describes
//! upstream's API, and tachyon-compat's run of it proves ours matches. Needs the C++ core:
//! `crates/compare/build-upstream.sh test -p tachyon-compare --features compare-upstream
//! --test upstream_api`.
#![cfg(feature = "compare-upstream")]

#[path = "../../compat/tests/api_surface/items.rs"]
mod items;
