//! Graph validation against a registry of small test components.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde::Deserialize;

use super::resolve::resolve;
use super::*;
use crate::component::{
    Component, ComponentConfig, ComponentError, Consumer, ConsumerComponent, CreateSettings,
    SignalConsumers,
};
use crate::config::decode::DecodeError;
use crate::factory::{
    decode_config, ConnectorFactory, ExporterFactory, ExtensionFactory, Factory, ProcessorFactory,
    ReceiverFactory, Stability,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Listen {
    endpoint: String,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            endpoint: "localhost:4317".into(),
        }
    }
}

impl Validate for Listen {}
impl ComponentConfig for Listen {
    fn listen_endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Plain {
    level: u16,
}

impl Validate for Plain {}
impl ComponentConfig for Plain {}

struct Fake(&'static str);

impl Factory for Fake {
    fn type_name(&self) -> &'static str {
        self.0
    }
    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        if self.0 == "recv" || self.0 == "ext" {
            decode_config::<Listen>(value)
        } else {
            decode_config::<Plain>(value)
        }
    }
}

impl ReceiverFactory for Fake {
    fn stability(&self, signal: Signal) -> Option<Stability> {
        (signal != Signal::Logs).then_some(Stability::Beta)
    }
    fn create(
        &self,
        _: CreateSettings,
        _: &dyn ComponentConfig,
        _: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        Err(ComponentError::new("not built in these tests"))
    }
}

impl ProcessorFactory for Fake {
    fn stability(&self, _: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }
    fn create(
        &self,
        _: CreateSettings,
        _: &dyn ComponentConfig,
        _: Signal,
        _: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        Err(ComponentError::new("not built in these tests"))
    }
}

impl ExporterFactory for Fake {
    fn stability(&self, _: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }
    fn create(
        &self,
        _: CreateSettings,
        _: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        Err(ComponentError::new("not built in these tests"))
    }
}

impl ConnectorFactory for Fake {
    fn stability(&self, from: Signal, to: Signal) -> Option<Stability> {
        (from == to).then_some(Stability::Beta)
    }
    fn create(
        &self,
        _: CreateSettings,
        _: &dyn ComponentConfig,
        _: Signal,
        _: SignalConsumers,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        Err(ComponentError::new("not built in these tests"))
    }
}

impl ExtensionFactory for Fake {
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn create(
        &self,
        _: CreateSettings,
        _: &dyn ComponentConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        Err(ComponentError::new("not built in these tests"))
    }
}

fn registry() -> Registry {
    let mut r = Registry::default();
    r.add_receiver(Arc::new(Fake("recv")));
    r.add_processor(Arc::new(Fake("proc")));
    r.add_exporter(Arc::new(Fake("exp")));
    r.alias_exporter("old_exp", "exp");
    r.add_connector(Arc::new(Fake("conn")));
    r.add_extension(Arc::new(Fake("ext")));
    r
}

fn load_yaml(yaml: &str) -> Result<Config, Vec<String>> {
    let resolved = resolve(&[format!("yaml:{yaml}")], &[], &|_| None).expect("resolves");
    load(&resolved, &registry()).map_err(|errs| {
        errs.iter()
            .map(|e| {
                // The yaml: source label is not interesting here.
                let mut e = e.clone();
                e.source = None;
                e.to_string()
            })
            .collect()
    })
}

const BASE: &str = "
receivers: {recv: {}}
exporters: {exp: {}}
";

#[test]
fn a_valid_config_loads() {
    let cfg = load_yaml(&format!(
        "{BASE}processors: {{proc: {{}}}}\nservice: {{pipelines: {{traces: {{receivers: [recv], processors: [proc], exporters: [exp]}}}}}}"
    ))
    .unwrap();
    assert_eq!(cfg.pipelines.len(), 1);
    assert!(cfg.warnings.is_empty());
}

#[test]
fn every_problem_is_reported_together() {
    let errs = load_yaml(
        "
receivers:
  recv: {bogus: 1}
  nosuch: {}
  'recv/': {}
exporters:
  exp: {level: high}
  logging: {}
service:
  extensions: [ext]
  pipelines:
    traces: {receivers: [recv], exporters: [missing]}
    metrics: {exporters: [exp]}
    logs: {receivers: [recv], processors: [proc], exporters: [exp]}
    spans: {receivers: [recv], exporters: [exp]}
",
    )
    .unwrap_err();
    let expected = [
        "receivers::recv: unknown field \"bogus\", expected one of endpoint",
        "receivers::nosuch: unknown type: \"nosuch\" for id: \"nosuch\" (valid values: [recv])",
        "receivers::recv/: in \"recv/\" id: the part after / should not be empty",
        "exporters::exp: level: expected a uint16, got string \"high\"",
        "exporters::logging: the logging exporter has been deprecated, use the debug exporter instead",
        "service::extensions: references extension \"ext\" which is not configured",
        "service::pipelines::traces: references exporter \"missing\" which is not configured",
        "service::pipelines::metrics: must have at least one receiver",
        "service::pipelines::logs: references processor \"proc\" which is not configured",
        "service::pipelines::spans: unknown signal \"spans\" (valid values: traces, metrics, logs)",
    ];
    for e in expected {
        assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
    }
}

#[test]
fn unsupported_signal_and_duplicates() {
    let errs = load_yaml(&format!(
        "{BASE}processors: {{proc: {{}}}}\nservice: {{pipelines: {{logs: {{receivers: [recv], processors: [proc, proc], exporters: [exp]}}}}}}"
    ))
    .unwrap_err();
    assert!(errs.contains(&"service::pipelines::logs: receiver \"recv\" does not support logs (telemetry type is not supported)".to_string()), "{errs:#?}");
    assert!(
        errs.contains(
            &"service::pipelines::logs: references processor \"proc\" multiple times".to_string()
        ),
        "{errs:#?}"
    );
}

#[test]
fn no_pipelines_and_no_exporters() {
    let errs = load_yaml(BASE).unwrap_err();
    assert_eq!(
        errs,
        vec!["service::pipelines: service must have at least one pipeline"]
    );
    let errs = load_yaml(&format!(
        "{BASE}service: {{pipelines: {{traces: {{receivers: [recv]}}}}}}"
    ))
    .unwrap_err();
    assert_eq!(
        errs,
        vec!["service::pipelines::traces: must have at least one exporter"]
    );
}

#[test]
fn unknown_sections_and_keys() {
    let errs = load_yaml(&format!(
        "{BASE}extras: {{}}\nservice: {{pipeline: {{}}, pipelines: {{traces: {{receivers: [recv], exporters: [exp]}}}}}}"
    ))
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e
                .starts_with("unknown section \"extras\", expected one of receivers, processors")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with(
            "service: unknown field \"pipeline\", expected one of extensions, pipelines, telemetry"
        )),
        "{errs:#?}"
    );
}

#[test]
fn deprecated_alias_warns() {
    let cfg = load_yaml(
        "receivers: {recv: {}}\nexporters: {old_exp: {}}\nservice: {pipelines: {traces: {receivers: [recv], exporters: [old_exp]}}}",
    )
    .unwrap();
    assert_eq!(
        cfg.warnings,
        vec!["exporters::old_exp: the type \"old_exp\" is deprecated, use \"exp\" instead"]
    );
}

#[test]
fn port_clashes_are_found() {
    let errs = load_yaml(
        "
receivers:
  recv: {endpoint: 'localhost:4317'}
  recv/2: {endpoint: '0.0.0.0:4317'}
  recv/3: {endpoint: 'localhost:5000'}
exporters: {exp: {}}
extensions:
  ext: {endpoint: '127.0.0.1:5000'}
service:
  extensions: [ext]
  pipelines:
    traces: {receivers: [recv, recv/2, recv/3], exporters: [exp]}
",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with(
            "receivers::recv/2: endpoint \"0.0.0.0:4317\" uses port 4317, which receivers::recv"
        ),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with(
            "extensions::ext: endpoint \"127.0.0.1:5000\" uses port 5000, which receivers::recv/3"
        ),
        "{errs:#?}"
    );
}

#[test]
fn unused_components_are_still_checked_but_ports_are_not() {
    let errs = load_yaml(
        "receivers: {recv: {}, recv/unused: {endpoint: 'localhost:4317'}}\nexporters: {exp: {}, exp/unused: {level: -1}}\nservice: {pipelines: {traces: {receivers: [recv], exporters: [exp]}}}",
    )
    .unwrap_err();
    assert_eq!(
        errs,
        vec!["exporters::exp/unused: level: value -1 is out of range for a uint16"]
    );
}

#[test]
fn connectors_must_be_used_on_both_sides_without_cycles() {
    let errs = load_yaml(&format!(
        "{BASE}connectors: {{conn: {{}}}}\nservice: {{pipelines: {{traces: {{receivers: [recv], exporters: [conn]}}}}}}"
    ))
    .unwrap_err();
    assert_eq!(errs, vec!["connectors::conn: must be used as both receiver and exporter but is not used as receiver"]);

    let errs = load_yaml(&format!(
        "{BASE}connectors: {{conn: {{}}}}\nservice: {{pipelines: {{traces: {{receivers: [recv, conn], exporters: [conn]}}}}}}"
    ))
    .unwrap_err();
    assert!(
        errs[0].starts_with("service::pipelines: cycle detected"),
        "{errs:#?}"
    );

    let cfg = load_yaml(&format!(
        "{BASE}connectors: {{conn: {{}}}}\nservice: {{pipelines: {{traces: {{receivers: [recv], exporters: [conn]}}, traces/2: {{receivers: [conn], exporters: [exp]}}}}}}"
    ))
    .unwrap();
    assert_eq!(cfg.pipelines.len(), 2);
}

#[test]
fn errors_name_the_source_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("base.yaml");
    let b = dir.path().join("override.yaml");
    std::fs::write(
        &a,
        format!(
            "{BASE}service: {{pipelines: {{traces: {{receivers: [recv], exporters: [exp]}}}}}}"
        ),
    )
    .unwrap();
    std::fs::write(
        &b,
        "receivers: {recv: {endpoint: 5}}\nexporters: {exp: {nope: 1}}\n",
    )
    .unwrap();
    let resolved = resolve(
        &[a.display().to_string(), b.display().to_string()],
        &[],
        &|_| None,
    )
    .unwrap();
    let errs = load(&resolved, &registry()).unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let src = b.display().to_string();
    assert!(
        text.contains(&format!(
            "{src}: exporters::exp: unknown field \"nope\", expected one of level"
        )),
        "{text:#?}"
    );
}

#[test]
fn metrics_endpoint_defaults_and_readers() {
    let cfg = load_yaml(&format!(
        "{BASE}service: {{pipelines: {{traces: {{receivers: [recv], exporters: [exp]}}}}}}"
    ))
    .unwrap();
    let ep = cfg.telemetry.metrics.endpoint().unwrap();
    assert_eq!(ep.address, "localhost:8888");
    assert!(!ep.type_suffix);
    let cfg = load_yaml(&format!(
        "{BASE}service: {{telemetry: {{metrics: {{readers: [{{pull: {{exporter: {{prometheus: {{host: 0.0.0.0, port: 9999, without_type_suffix: false}}}}}}}}]}}}}, pipelines: {{traces: {{receivers: [recv], exporters: [exp]}}}}}}"
    ))
    .unwrap();
    let ep = cfg.telemetry.metrics.endpoint().unwrap();
    assert_eq!(ep.address, "0.0.0.0:9999");
    assert!(ep.type_suffix);
    let cfg = load_yaml(&format!(
        "{BASE}service: {{telemetry: {{metrics: {{level: none}}}}, pipelines: {{traces: {{receivers: [recv], exporters: [exp]}}}}}}"
    ))
    .unwrap();
    assert!(cfg.telemetry.metrics.endpoint().is_none());
}
