//! Upstream's API surface, checked against tachyon-compat (see `api_surface/items.rs`).

extern crate tachyon_compat as tachyon_ipc;

#[path = "api_surface/items.rs"]
mod items;
