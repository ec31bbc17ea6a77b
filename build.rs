//! Link settings of the `ferrotel` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Packs the position-independent executable's relative relocations (DT_RELR, glibc
        // 2.36 and binutils 2.38 on): the loader reads a few kilobytes at start instead of
        // about 700 KB of relocation records, which otherwise stay resident.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
