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

/// Every complete configuration shown in the docs (a YAML block with top-level `receivers:`
/// and `service:`) validates, with no warning.
#[test]
fn configurations_in_the_docs_validate() {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for entry in std::fs::read_dir(docs).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read doc");
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let yaml = block.split("```").next().unwrap_or_default();
            let top = |key: &str| yaml.lines().any(|l| l.starts_with(key));
            if !top("service:") || !top("receivers:") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let file = dir.path().join(format!("{name}-{i}.yaml"));
            std::fs::write(&file, yaml).expect("write block");
            let out = harness::run_bounded(
                Command::new(harness::BIN)
                    .args(["validate", "--config"])
                    .arg(&file)
                    .env("POD_NAME", "gateway-0")
                    .env("SIGNOZ_INGESTION_KEY", "key")
                    .env("KAFKA_PASSWORD", "secret"),
                dir.path(),
                "validate",
                Duration::from_secs(30),
            );
            assert!(
                out.status.success() && !out.stderr.contains("warning"),
                "{name}, YAML block {}:\n{yaml}\n{}{}",
                i + 1,
                out.stdout,
                out.stderr
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} configurations found in docs/");
}
