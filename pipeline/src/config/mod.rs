//! Configuration: reading sources, expanding references, decoding each component's subtree
//! strictly, and validating the pipeline graph. Every problem found is collected, so a user
//! sees all of them at once.

pub mod decode;
pub mod expand;
pub mod id;
pub mod redact;
pub mod resolve;
pub mod service;
pub mod types;
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use indexmap::IndexMap;

use crate::component::ComponentConfig;
use crate::factory::{Registry, Section, Validate};
use crate::pdata::Signal;
use id::{ComponentId, PipelineId};
use resolve::Resolved;
use service::{ServiceSection, TelemetrySection};
use value::Value;

/// One configuration problem: the source it came from (when known), where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: Option<String>,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// One pipeline as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub receivers: Vec<ComponentId>,
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

/// A decoded component configuration.
#[derive(Debug)]
pub struct ComponentEntry {
    pub config: Box<dyn ComponentConfig>,
}

/// The whole configuration, decoded and validated.
#[derive(Debug, Default)]
pub struct Config {
    pub receivers: IndexMap<ComponentId, ComponentEntry>,
    pub processors: IndexMap<ComponentId, ComponentEntry>,
    pub exporters: IndexMap<ComponentId, ComponentEntry>,
    pub connectors: IndexMap<ComponentId, ComponentEntry>,
    pub extensions: IndexMap<ComponentId, ComponentEntry>,
    pub pipelines: IndexMap<PipelineId, Pipeline>,
    pub service_extensions: Vec<ComponentId>,
    pub telemetry: TelemetrySection,
    /// Deprecations and other things worth a warning at start.
    pub warnings: Vec<String>,
}

impl Config {
    pub fn section(&self, section: Section) -> &IndexMap<ComponentId, ComponentEntry> {
        match section {
            Section::Receivers => &self.receivers,
            Section::Processors => &self.processors,
            Section::Exporters => &self.exporters,
            Section::Connectors => &self.connectors,
            Section::Extensions => &self.extensions,
        }
    }

    fn section_mut(&mut self, section: Section) -> &mut IndexMap<ComponentId, ComponentEntry> {
        match section {
            Section::Receivers => &mut self.receivers,
            Section::Processors => &mut self.processors,
            Section::Exporters => &mut self.exporters,
            Section::Connectors => &mut self.connectors,
            Section::Extensions => &mut self.extensions,
        }
    }
}

const TOP_LEVEL: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];

struct Errors<'a> {
    resolved: &'a Resolved,
    list: Vec<ConfigError>,
    /// Components that are configured but could not be decoded: already reported, so
    /// pipelines naming them add nothing.
    broken: BTreeSet<(Section, ComponentId)>,
}

impl Errors<'_> {
    fn push(&mut self, path: &[&str], message: impl Into<String>) {
        self.list.push(ConfigError {
            source: self.resolved.origin(path).map(str::to_string),
            path: path.join("::"),
            message: message.into(),
        });
    }
}

/// Decodes and validates a resolved configuration against the registered component types.
pub fn load(resolved: &Resolved, registry: &Registry) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Errors {
        resolved,
        list: Vec::new(),
        broken: BTreeSet::new(),
    };
    let mut config = Config::default();
    let empty = value::Map::new();
    let root = match resolved.root.typed() {
        Value::Map(m) => m,
        Value::Null => &empty,
        other => {
            errors.push(
                &[],
                format!("the configuration must be a map, got {}", other.kind()),
            );
            return Err(errors.list);
        }
    };
    for key in root.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(
                &[],
                format!(
                    "unknown section \"{key}\", expected one of {}",
                    TOP_LEVEL.join(", ")
                ),
            );
        }
    }

    for section in Section::ALL {
        load_section(root, section, registry, &mut config, &mut errors);
    }

    let service: ServiceSection = match root.get("service") {
        Some(v) => match decode::decode(v) {
            Ok(s) => s,
            Err(err) => {
                let mut path = vec!["service"];
                path.extend(err.path.iter().map(String::as_str));
                errors.push(&path, err.message);
                ServiceSection::default()
            }
        },
        None => ServiceSection::default(),
    };
    if let Err(message) = service.telemetry.metrics.validate() {
        errors.push(&["service", "telemetry", "metrics"], message);
    }
    config.telemetry = service.telemetry.clone();

    for ext in &service.extensions {
        match ComponentId::parse(ext) {
            Ok(id) if config.extensions.contains_key(&id) => config.service_extensions.push(id),
            Ok(_) => errors.push(
                &["service", "extensions"],
                format!("references extension \"{ext}\" which is not configured"),
            ),
            Err(message) => errors.push(&["service", "extensions"], message),
        }
    }

    validate_pipelines(&service, registry, &mut config, &mut errors);
    if errors.list.is_empty() {
        check_connectors(&mut config, &mut errors);
    }
    if errors.list.is_empty() {
        check_ports(&config, &mut errors);
    }
    if errors.list.is_empty() {
        Ok(config)
    } else {
        Err(errors.list)
    }
}

fn load_section(
    root: &value::Map,
    section: Section,
    registry: &Registry,
    config: &mut Config,
    errors: &mut Errors<'_>,
) {
    let key = section.key();
    let Some(node) = root.get(key) else { return };
    let entries = match node.typed() {
        Value::Map(m) => m,
        Value::Null => return,
        other => {
            errors.push(&[key], format!("expected a map, got {}", other.kind()));
            return;
        }
    };
    for (raw_id, subtree) in entries {
        let path = [key, raw_id.as_str()];
        let id = match ComponentId::parse(raw_id) {
            Ok(id) => id,
            Err(message) => {
                errors.push(&path, message);
                continue;
            }
        };
        let Some((factory, deprecated_for)) = registry.lookup(section, id.kind()) else {
            let message = if section == Section::Exporters && id.kind() == "logging" {
                "the logging exporter has been deprecated, use the debug exporter instead"
                    .to_string()
            } else {
                format!(
                    "unknown type: \"{}\" for id: \"{}\" (valid values: [{}])",
                    id.kind(),
                    id,
                    registry.names(section).join(" ")
                )
            };
            errors.push(&path, message);
            errors.broken.insert((section, id));
            continue;
        };
        if let Some(current) = deprecated_for {
            config.warnings.push(format!(
                "{key}::{id}: the type \"{}\" is deprecated, use \"{current}\" instead",
                id.kind()
            ));
        }
        match factory.decode(subtree) {
            Ok(decoded) => {
                config
                    .section_mut(section)
                    .insert(id, ComponentEntry { config: decoded });
            }
            Err(err) => {
                let mut full: Vec<&str> = path.to_vec();
                full.extend(err.path.iter().map(String::as_str));
                // Name the component, then the path inside it, as users read it.
                let inner = err.path.join("::");
                let message = if inner.is_empty() {
                    err.message.clone()
                } else {
                    format!("{inner}: {}", err.message)
                };
                errors.list.push(ConfigError {
                    source: errors.resolved.origin(&full).map(str::to_string),
                    path: format!("{key}::{raw_id}"),
                    message,
                });
                errors.broken.insert((section, id));
            }
        }
    }
}

fn validate_pipelines(
    service: &ServiceSection,
    registry: &Registry,
    config: &mut Config,
    errors: &mut Errors<'_>,
) {
    if service.pipelines.is_empty() {
        errors.push(
            &["service", "pipelines"],
            "service must have at least one pipeline",
        );
        return;
    }
    for (raw_pid, section) in &service.pipelines {
        let path = ["service", "pipelines", raw_pid.as_str()];
        let pid = match PipelineId::parse(raw_pid) {
            Ok(p) => p,
            Err(message) => {
                errors.push(&path, message);
                continue;
            }
        };
        let signal = pid.signal;
        if section.receivers.is_empty() {
            errors.push(&path, "must have at least one receiver");
        }
        if section.exporters.is_empty() {
            errors.push(&path, "must have at least one exporter");
        }
        let mut pipeline = Pipeline {
            receivers: Vec::new(),
            processors: Vec::new(),
            exporters: Vec::new(),
        };
        let check = |raw: &str,
                     role: Section,
                     out: &mut Vec<ComponentId>,
                     errors: &mut Errors<'_>| {
            let id = match ComponentId::parse(raw) {
                Ok(id) => id,
                Err(message) => {
                    errors.push(&path, message);
                    return;
                }
            };
            if errors.broken.contains(&(role, id.clone()))
                || (role != Section::Processors
                    && errors.broken.contains(&(Section::Connectors, id.clone())))
            {
                return;
            }
            let is_connector = role != Section::Processors && config.connectors.contains_key(&id);
            if !is_connector && !config.section(role).contains_key(&id) {
                errors.push(
                    &path,
                    format!(
                        "references {} \"{id}\" which is not configured",
                        role.noun()
                    ),
                );
                return;
            }
            if !is_connector {
                let supported = match role {
                    Section::Receivers => registry
                        .receivers
                        .get(id.kind())
                        .and_then(|r| r.factory.stability(signal)),
                    Section::Processors => registry
                        .processors
                        .get(id.kind())
                        .and_then(|r| r.factory.stability(signal)),
                    _ => registry
                        .exporters
                        .get(id.kind())
                        .and_then(|r| r.factory.stability(signal)),
                };
                if supported.is_none() {
                    errors.push(
                        &path,
                        format!(
                            "{} \"{id}\" does not support {signal} (telemetry type is not supported)",
                            role.noun()
                        ),
                    );
                    return;
                }
            }
            if out.contains(&id) {
                errors.push(
                    &path,
                    format!("references {} \"{id}\" multiple times", role.noun()),
                );
                return;
            }
            out.push(id);
        };
        for r in &section.receivers {
            check(r, Section::Receivers, &mut pipeline.receivers, errors);
        }
        for p in &section.processors {
            check(p, Section::Processors, &mut pipeline.processors, errors);
        }
        for e in &section.exporters {
            check(e, Section::Exporters, &mut pipeline.exporters, errors);
        }
        config.pipelines.insert(pid, pipeline);
    }
}

/// Connectors: each must be an exporter in some pipeline and a receiver in another, for a
/// signal pair it supports, and the pipelines they join must not form a cycle.
fn check_connectors(config: &mut Config, errors: &mut Errors<'_>) {
    for (id, _) in &config.connectors {
        if config.exporters.contains_key(id) || config.receivers.contains_key(id) {
            errors.push(
                &["connectors", &id.to_string()],
                "ambiguous ID: the same ID is also configured as a receiver or an exporter",
            );
        }
    }
    for (cid, _) in &config.connectors {
        let as_exporter: Vec<Signal> = config
            .pipelines
            .iter()
            .filter(|(_, p)| p.exporters.contains(cid))
            .map(|(pid, _)| pid.signal)
            .collect();
        let as_receiver: Vec<Signal> = config
            .pipelines
            .iter()
            .filter(|(_, p)| p.receivers.contains(cid))
            .map(|(pid, _)| pid.signal)
            .collect();
        let used = !as_exporter.is_empty() || !as_receiver.is_empty();
        if used && as_exporter.is_empty() {
            errors.push(
                &["connectors", &cid.to_string()],
                "must be used as both receiver and exporter but is not used as exporter",
            );
        }
        if used && as_receiver.is_empty() {
            errors.push(
                &["connectors", &cid.to_string()],
                "must be used as both receiver and exporter but is not used as receiver",
            );
        }
    }
    // Cycle check over pipelines joined by connectors.
    let ids: Vec<PipelineId> = config.pipelines.keys().cloned().collect();
    let mut edges: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, from) in ids.iter().enumerate() {
        for (j, to) in ids.iter().enumerate() {
            let (Some(a), Some(b)) = (config.pipelines.get(from), config.pipelines.get(to)) else {
                continue;
            };
            if a.exporters
                .iter()
                .any(|e| config.connectors.contains_key(e) && b.receivers.contains(e))
            {
                edges.entry(i).or_default().push(j);
            }
        }
    }
    let mut state = vec![0u8; ids.len()];
    fn visit(n: usize, edges: &HashMap<usize, Vec<usize>>, state: &mut [u8]) -> bool {
        if state[n] == 1 {
            return true;
        }
        if state[n] == 2 {
            return false;
        }
        state[n] = 1;
        for &m in edges.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
            if visit(m, edges, state) {
                return true;
            }
        }
        state[n] = 2;
        false
    }
    for (i, id) in ids.iter().enumerate() {
        if visit(i, &edges, &mut state) {
            errors.push(
                &["service", "pipelines"],
                format!("cycle detected: pipeline \"{id}\" feeds itself through connectors"),
            );
            break;
        }
    }
}

/// Two components (or the telemetry endpoint) listening on the same port.
fn check_ports(config: &Config, errors: &mut Errors<'_>) {
    let mut used_receivers: BTreeSet<&ComponentId> = BTreeSet::new();
    for p in config.pipelines.values() {
        used_receivers.extend(
            p.receivers
                .iter()
                .filter(|r| config.receivers.contains_key(*r)),
        );
    }
    let mut listeners: Vec<(String, String)> = Vec::new();
    for id in used_receivers {
        if let Some(entry) = config.receivers.get(id) {
            for ep in entry.config.listen_endpoints() {
                listeners.push((format!("receivers::{id}"), ep));
            }
        }
    }
    for id in &config.service_extensions {
        if let Some(entry) = config.extensions.get(id) {
            for ep in entry.config.listen_endpoints() {
                listeners.push((format!("extensions::{id}"), ep));
            }
        }
    }
    if let Some(ep) = config.telemetry.metrics.endpoint() {
        listeners.push(("service::telemetry::metrics".to_string(), ep.address));
    }
    let mut seen: BTreeMap<u16, Vec<(String, String)>> = BTreeMap::new();
    for (owner, ep) in listeners {
        let Some((host, port)) = split_host_port(&ep) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        let entry = seen.entry(port).or_default();
        if let Some((other, other_ep)) = entry.iter().find(|(_, h)| hosts_overlap(h, &host)) {
            errors.list.push(ConfigError {
                source: None,
                path: owner.clone(),
                message: format!(
                    "endpoint \"{ep}\" uses port {port}, which {other} (\"{other_ep}\") also listens on"
                ),
            });
        }
        entry.push((owner, host));
    }
}

/// Splits `host:port` (IPv6 in brackets); `:4317` has an empty host.
pub fn split_host_port(endpoint: &str) -> Option<(String, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let port = port.parse().ok()?;
    Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}

fn hosts_overlap(a: &str, b: &str) -> bool {
    let norm = |h: &str| -> String {
        match h {
            "" | "0.0.0.0" | "::" => "*".to_string(),
            "localhost" | "127.0.0.1" | "::1" => "loopback".to_string(),
            other => other.to_ascii_lowercase(),
        }
    };
    let (a, b) = (norm(a), norm(b));
    a == "*" || b == "*" || a == b
}

#[cfg(test)]
mod tests;
