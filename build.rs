//! Link settings of the `ferrotel` binary.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/startup.ld");
    println!("cargo:rerun-if-env-changed=FERROTEL_STARTUP_ORDER");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    // Packs the position-independent executable's relative relocations (DT_RELR, glibc
    // 2.36 and binutils 2.38 on): the loader reads a few kilobytes at start instead of
    // about 700 KB of relocation records, which otherwise stay resident.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // Release builds lay out the functions that run at start-up and idle together (see
    // scripts/startup-order): the idle agent then keeps about a third as much of its code
    // resident. The script only adds an output section (`INSERT`), which GNU ld and lld
    // read; `FERROTEL_STARTUP_ORDER=0` leaves it out, e.g. for a linker without scripts.
    // Debug builds leave it out: their many sections make its patterns slow to match.
    let script = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link")
        .join("startup.ld");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let wanted = std::env::var("FERROTEL_STARTUP_ORDER").map_or(true, |v| v != "0");
    if release && wanted && script.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
