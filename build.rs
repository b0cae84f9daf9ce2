//! Generates include/vcl/vppcom.h: enums and defines from src/abi.rs, structs and
//! prototypes from src/ffi by cbindgen. The header is committed; CI checks it is fresh.

#[allow(dead_code)]
mod abi {
    include!("src/abi.rs");
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/abi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // The soname names the VPP ABI family this library speaks (see README, "Versioning").
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvcl.so.26.06");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let mut config =
        cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "{}\n{}",
        config.after_includes.take().unwrap_or_default(),
        abi::render_c()
    ));
    let out = format!("{dir}/include/vcl/vppcom.h");
    let bindings = cbindgen::Builder::new()
        .with_src(format!("{dir}/src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate vppcom.h");
    // Write only when the text changed, so an unchanged header keeps its mtime.
    bindings.write_to_file(out);
}
