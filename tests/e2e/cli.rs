//! The command line: validate, print-config, components, expansion and merging, as a user
//! runs them.

use std::path::Path;
use std::process::{Command, Output};

fn ferrotel(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrotel"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the ferrotel binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

const GOOD: &str = "
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  debug: {}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
";

#[test]
fn validate_accepts_a_good_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "good.yaml", GOOD);
    let out = ferrotel(&["validate", "--config", &path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn validate_lists_every_problem_with_file_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "bad.yaml",
        "
receivers:
  otlp/2:
    protocols:
      htttp:
  nosuch: {}
exporters:
  debug:
    verbosity: loud
    sampling_initial: many
  logging:
service:
  pipelines:
    traces:
      receivers: [otlp/2]
      exporters: [debug, otlp]
    metrics:
      receivers: []
      exporters: [file]
",
    );
    let out = ferrotel(&["validate", "--config", &path], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for expected in [
        format!("{path}: receivers::otlp/2: protocols: unknown field \"htttp\", expected one of grpc, http"),
        format!("{path}: receivers::nosuch: unknown type: \"nosuch\" for id: \"nosuch\" (valid values: [kafka otlp prometheus])"),
        format!("{path}: exporters::debug: verbosity: invalid value \"loud\", expected one of basic, normal, detailed"),
        format!("{path}: exporters::logging: the logging exporter has been deprecated, use the debug exporter instead"),
        format!("{path}: service::pipelines::traces: references exporter \"otlp\" which is not configured"),
        format!("{path}: service::pipelines::metrics: must have at least one receiver"),
        format!("{path}: service::pipelines::metrics: references exporter \"file\" which is not configured"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    // The receiver that failed to decode is reported once, not again from the pipeline.
    assert!(!err.contains("references receiver \"otlp/2\""), "{err}");
}

#[test]
fn wrong_value_types_and_port_clashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "clash.yaml",
        "
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 'localhost:14317', max_recv_msg_size_mib: lots}
  otlp/b:
    protocols:
      http: {endpoint: '0.0.0.0:14317'}
exporters:
  debug: {}
extensions:
  health_check: {endpoint: 'localhost:14318'}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:14318
  pipelines:
    logs: {receivers: [otlp/b], exporters: [debug]}
",
    );
    let out = ferrotel(&["validate", "--config", &path], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("receivers::otlp: protocols::grpc::max_recv_msg_size_mib: expected a uint64, got string \"lots\""),
        "{err}"
    );
    // Ports are compared once every component decodes.
    let path = write(
        dir.path(),
        "clash2.yaml",
        "
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 'localhost:14317'}
  otlp/b:
    protocols:
      http: {endpoint: '0.0.0.0:14317'}
exporters:
  debug: {}
extensions:
  health_check: {endpoint: 'localhost:14318'}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:14318
  pipelines:
    logs: {receivers: [otlp, otlp/b], exporters: [debug]}
",
    );
    let out = ferrotel(&["validate", "--config", &path], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "receivers::otlp/b: endpoint \"0.0.0.0:14317\" uses port 14317, which receivers::otlp"
        ),
        "{err}"
    );
    assert!(err.contains("service::telemetry::metrics: endpoint \"127.0.0.1:14318\" uses port 14318, which extensions::health_check"), "{err}");
}

#[test]
fn expansion_types_defaults_and_escapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "env.yaml",
        "
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${env:HOST}:${PORT}
        max_request_body_size: ${env:BODY}
        traces_url_path: /v1/${env:UNSET_PATH:-traces}
        response_headers:
          x-literal: $${env:HOST}
          x-dollar: cost $$5
          x-from-env: ${env:WITH_DOLLARS}
exporters:
  debug:
    sampling_initial: ${env:N}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
",
    );
    let env = [
        ("HOST", "127.0.0.1"),
        ("PORT", "4318"),
        ("BODY", "1048576"),
        ("N", "7"),
        ("WITH_DOLLARS", "a $$ b"),
    ];
    let out = ferrotel(&["validate", "--config", &path], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ferrotel(
        &["print-config", "--config", &path, "--format", "json"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let http = &v["receivers"]["otlp"]["protocols"]["http"];
    assert_eq!(http["endpoint"], "127.0.0.1:4318");
    assert_eq!(
        http["max_request_body_size"], 1048576,
        "a whole-field reference keeps its YAML type"
    );
    assert_eq!(http["traces_url_path"], "/v1/traces");
    assert_eq!(
        http["response_headers"]["x-literal"], "[REDACTED]",
        "headers are redacted"
    );
    let out = ferrotel(
        &[
            "print-config",
            "--config",
            &path,
            "--format",
            "json",
            "--mode",
            "unredacted",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let headers = &v["receivers"]["otlp"]["protocols"]["http"]["response_headers"];
    assert_eq!(headers["x-literal"], "${env:HOST}");
    assert_eq!(headers["x-dollar"], "cost $5");
    assert_eq!(headers["x-from-env"], "a $ b");
    assert_eq!(v["exporters"]["debug"]["sampling_initial"], 7);
}

#[test]
fn unset_variables_warn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "unset.yaml",
        &GOOD.replace(
            "debug: {}",
            "debug: {verbosity: \"${env:FERROTEL_SURELY_UNSET_VAR}basic\"}",
        ),
    );
    let out = ferrotel(&["validate", "--config", &path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Configuration references unset environment variable (name: FERROTEL_SURELY_UNSET_VAR)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sources_merge_in_order_and_set_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = write(dir.path(), "base.yaml", GOOD);
    let over = write(
        dir.path(),
        "over.yaml",
        "exporters:\n  debug:\n    verbosity: normal\n    sampling_initial: 5\nservice:\n  pipelines:\n    traces:\n      exporters: [debug, debug/2]\n",
    );
    let out = ferrotel(
        &[
            "print-config",
            "--config",
            &base,
            "--config",
            &over,
            "--config",
            "yaml:exporters::debug/2::verbosity: basic",
            "--set=exporters.debug.verbosity=detailed",
            "--format=json",
            "--validate=true",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["exporters"]["debug"]["verbosity"], "detailed");
    assert_eq!(v["exporters"]["debug"]["sampling_initial"], 5);
    assert_eq!(v["exporters"]["debug/2"]["verbosity"], "basic");
    assert_eq!(
        v["service"]["pipelines"]["traces"]["exporters"],
        serde_json::json!(["debug", "debug/2"]),
        "lists are replaced"
    );
    assert_eq!(
        v["service"]["pipelines"]["traces"]["receivers"],
        serde_json::json!(["otlp"])
    );
    let out = ferrotel(
        &["validate", "--config", &base, "--set", "exporters.debug"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing equal sign"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_config_and_missing_files_are_clear_errors() {
    let out = ferrotel(&["validate"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("at least one config flag must be provided"),
        "{}",
        stderr(&out)
    );
    let out = ferrotel(&["validate", "--config", "no/such/file.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read config file \"no/such/file.yaml\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn print_config_redacts_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "secret.yaml",
        &format!("{GOOD}\nextensions:\n  health_check:\n    endpoint: 127.0.0.1:0\n    tls:\n      cert_file: c.pem\n      key_pem: TOPSECRET\n"),
    );
    let out = ferrotel(&["print-config", "--config", &path], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("TOPSECRET"), "{text}");
    assert!(
        text.contains("key_pem: '[REDACTED]'") || text.contains("key_pem: \"[REDACTED]\""),
        "{text}"
    );
    assert!(text.contains("cert_file: c.pem"), "{text}");
    let out = ferrotel(
        &["print-config", "--config", &path, "--mode=unredacted"],
        &[],
    );
    assert!(stdout(&out).contains("TOPSECRET"));
}

#[test]
fn components_lists_types_and_signals() {
    let out = ferrotel(&["components"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    for expected in [
        "receivers:\n  - name: kafka\n    stability:\n        traces: Beta\n        metrics: Beta\n        logs: Beta",
        "  - name: otlp\n    stability:\n        traces: Stable\n        metrics: Stable\n        logs: Stable",
        "  - name: prometheus\n    stability:\n        metrics: Beta\n",
        "  - name: debug\n",
        "  - name: file\n",
        "connectors:\n  - name: forward\n    stability:\n        traces_to_traces: Beta",
        "extensions:\n  - name: health_check\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let out = ferrotel(&["--version"], &[]);
    assert!(stdout(&out).starts_with("ferrotel "), "{}", stdout(&out));
}

const SIGNOZ_KEY: &str = "sz-ingest-7c1e9d2f40ab";

#[test]
fn print_config_redacts_the_signoz_ingestion_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "signoz.yaml",
        &GOOD.replace(
            "debug: {}",
            "debug: {}\n  signoz:\n    region: eu\n    ingestion_key: ${env:SIGNOZ_KEY}\n    key_header: signoz-access-token\n  signoz/self_hosted:\n    endpoint: http://signoz-otel-collector:4318\n    ingestion_key: literal-key-in-file\n",
        ),
    );
    let env = [("SIGNOZ_KEY", SIGNOZ_KEY)];
    let out = ferrotel(&["validate", "--config", &path], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ferrotel(&["print-config", "--config", &path, "--format=json"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains(SIGNOZ_KEY), "{text}");
    assert!(!text.contains("literal-key-in-file"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v["exporters"]["signoz"],
        serde_json::json!({
            "region": "eu",
            "ingestion_key": "[REDACTED]",
            "key_header": "signoz-access-token",
        })
    );
    assert_eq!(
        v["exporters"]["signoz/self_hosted"],
        serde_json::json!({
            "endpoint": "http://signoz-otel-collector:4318",
            "ingestion_key": "[REDACTED]",
        })
    );
    let out = ferrotel(
        &["print-config", "--config", &path, "--mode=unredacted"],
        &env,
    );
    assert!(stdout(&out).contains(SIGNOZ_KEY), "{}", stdout(&out));

    // A cloud block without its key is refused, naming the field.
    let out = ferrotel(&["validate", "--config", &path], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("exporters::signoz: ingestion_key: required with region: SigNoz Cloud refuses data without the ingestion key"),
        "{}",
        stderr(&out)
    );
}

/// A backend that refuses every request with 401, as SigNoz does for a wrong key, and keeps
/// the head of each request.
fn refusing_backend() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&data[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while data.len() < head_end + length {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock().expect("lock").push(head);
            let body = "invalid ingestion key";
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, heads)
}

#[test]
fn the_signoz_key_stays_out_of_the_agent_log() {
    let (backend, heads) = refusing_backend();
    let mut agent =
        crate::harness::Agent::start_with_env(&[("SIGNOZ_KEY", SIGNOZ_KEY)], |ports, _| {
            format!(
                "
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  signoz:
    endpoint: http://127.0.0.1:{backend}
    ingestion_key: ${{env:SIGNOZ_KEY}}
    retry_on_failure:
      enabled: false
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: debug
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [signoz]}}
",
                http = ports.http,
                health = ports.health,
                metrics = ports.metrics,
            )
        });
    let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "hello"}}
    ]}]}]});
    let status = crate::delivery::Client::new().post_json(agent.ports.http, "logs", &body);
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !agent.log().contains("Exporting failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no export failure logged:\n{}",
            agent.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    agent.stop();
    let log = agent.log();
    assert!(log.contains("HTTP Status Code 401"), "{log}");
    assert!(!log.contains(SIGNOZ_KEY), "the key was logged:\n{log}");
    // It was sent, in its header.
    let heads = heads.lock().expect("lock").clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let sent = heads[0].to_ascii_lowercase();
    assert!(
        sent.contains(&format!("signoz-ingestion-key: {SIGNOZ_KEY}")),
        "{sent}"
    );
}
