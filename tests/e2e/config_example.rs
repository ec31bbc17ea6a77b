//! The repository's config.example.yaml is a valid configuration.

use std::process::Command;
use std::time::Duration;

use crate::harness;

#[test]
fn config_example_runs() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    // Validate only: the example listens on fixed ports that may be taken here.
    let out = harness::run_bounded(
        Command::new(harness::BIN).args(["validate", "--config", example]),
        dir.path(),
        "validate",
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "ferrotel validate config.example.yaml:\n{}{}",
        out.stdout,
        out.stderr
    );
}
