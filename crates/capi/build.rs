//! Generates `tachyon.h` from the crate's Rust declarations with cbindgen, into `OUT_DIR`
//! (`tachyon-capi-header` prints it; `./just capi` installs it), and names the shared
//! library `libtachyon.so` in its soname.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let sources = ["src/types.rs", "src/bus.rs", "src/rpc.rs"];
    for source in sources.iter().chain(&["cbindgen.toml"]) {
        println!("cargo:rerun-if-changed={source}");
    }
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("crates/capi/cbindgen.toml parses");
    let mut builder = cbindgen::Builder::new().with_config(config);
    for source in sources {
        builder = builder.with_src(crate_dir.join(source));
    }
    builder
        .generate()
        .expect("cbindgen generates tachyon.h from the crate's declarations")
        .write_to_file(out_dir.join("tachyon.h"));
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtachyon.so");
}
