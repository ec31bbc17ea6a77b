//! The running graph: components built from a validated config, wired receiver -> processors
//! -> exporters (through connectors where configured), started downstream-first and stopped
//! upstream-first.

mod fanout;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tracing::{error, info, warn, Instrument};

use crate::component::{
    Component, ComponentError, ConsumeResult, Consumer, ConsumerComponent, CreateSettings,
    Envelope, Host, ServiceStatus, SignalConsumers,
};
use crate::config::id::{ComponentId, PipelineId};
use crate::config::Config;
use crate::factory::Registry;
use crate::pdata::Signal;
use crate::telemetry::{ProcessorMetrics, Telemetry};
pub use fanout::FanOut;

/// What kind of node a running component is, for logs and ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Extension,
    Exporter,
    Connector,
    Processor,
    Receiver,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Exporter => "exporter",
            Kind::Connector => "connector",
            Kind::Processor => "processor",
            Kind::Receiver => "receiver",
        }
    }
}

struct Node {
    kind: Kind,
    /// The component ID, with the pipeline for processors (`batch in traces`).
    label: String,
    component: Arc<dyn Component>,
}

/// A built agent: every component, in the order they start.
pub struct Service {
    /// Extensions first, then exporters and the rest downstream-first, receivers last.
    nodes: Vec<Node>,
    host: Host,
    status: watch::Sender<ServiceStatus>,
}

/// Problems found while building; each names the component.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct BuildErrors(pub Vec<String>);

/// Counts items in and out of a processor (`otelcol_processor_{incoming,outgoing}_items`).
struct Counted<C: ?Sized> {
    inner: Arc<C>,
    counter: prometheus::IntCounter,
}

#[async_trait]
impl<C: Consumer + ?Sized> Consumer for Counted<C> {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        // Counted only when taken, so a stage that retries a refused batch counts it once.
        let items = envelope.payload.item_count() as u64;
        let result = self.inner.consume(envelope).await;
        if result.is_ok() {
            self.counter.inc_by(items);
        }
        result
    }

    fn accepts_encoded(&self) -> bool {
        self.inner.accepts_encoded()
    }
}

impl Service {
    /// Builds every component the pipelines use. Components configured but not used are not
    /// built, as upstream does.
    pub fn build(
        config: &Config,
        registry: &Registry,
        telemetry: Arc<Telemetry>,
    ) -> Result<Service, BuildErrors> {
        let (status, status_rx) = watch::channel(ServiceStatus::Starting);
        let host = Host {
            telemetry: telemetry.clone(),
            status: status_rx,
        };
        let mut errors = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let settings = |id: &ComponentId| CreateSettings {
            id: id.clone(),
            telemetry: telemetry.clone(),
        };

        for id in &config.service_extensions {
            let (Some(entry), Some(reg)) = (
                config.extensions.get(id),
                registry.extensions.get(id.kind()),
            ) else {
                continue;
            };
            match reg.factory.create(settings(id), entry.config.as_ref()) {
                Ok(component) => nodes.push(Node {
                    kind: Kind::Extension,
                    label: id.to_string(),
                    component,
                }),
                Err(err) => errors.push(format!("failed to create extension \"{id}\": {err}")),
            }
        }

        // Exporters: one instance per ID, for every pipeline that names it.
        let mut exporters: BTreeMap<ComponentId, Arc<dyn ConsumerComponent>> = BTreeMap::new();
        for pipeline in config.pipelines.values() {
            for id in &pipeline.exporters {
                if exporters.contains_key(id) || config.connectors.contains_key(id) {
                    continue;
                }
                let (Some(entry), Some(reg)) =
                    (config.exporters.get(id), registry.exporters.get(id.kind()))
                else {
                    continue;
                };
                match reg.factory.create(settings(id), entry.config.as_ref()) {
                    Ok(exporter) => {
                        nodes.push(Node {
                            kind: Kind::Exporter,
                            label: id.to_string(),
                            component: exporter.clone(),
                        });
                        exporters.insert(id.clone(), exporter);
                    }
                    Err(err) => errors.push(format!("failed to create exporter \"{id}\": {err}")),
                }
            }
        }
        if !errors.is_empty() {
            return Err(BuildErrors(errors));
        }

        // Pipelines downstream of connectors are built before the connectors that feed them.
        let mut entries: HashMap<PipelineId, Arc<dyn Consumer>> = HashMap::new();
        let mut connectors: HashMap<(ComponentId, Signal), Arc<dyn ConsumerComponent>> =
            HashMap::new();
        let total = config.pipelines.len();
        while entries.len() < total {
            let before = entries.len() + connectors.len();
            // Connectors whose receiving pipelines are all built.
            for (cid, entry) in &config.connectors {
                let receiving: Vec<&PipelineId> = config
                    .pipelines
                    .iter()
                    .filter(|(_, p)| p.receivers.contains(cid))
                    .map(|(pid, _)| pid)
                    .collect();
                if receiving.iter().any(|pid| !entries.contains_key(*pid)) {
                    continue;
                }
                let Some(reg) = registry.connectors.get(cid.kind()) else {
                    continue;
                };
                let from_signals: Vec<Signal> = config
                    .pipelines
                    .iter()
                    .filter(|(_, p)| p.exporters.contains(cid))
                    .map(|(pid, _)| pid.signal)
                    .collect();
                for from in from_signals {
                    if connectors.contains_key(&(cid.clone(), from)) {
                        continue;
                    }
                    let mut to = SignalConsumers::default();
                    let mut per_signal: BTreeMap<Signal, Vec<Arc<dyn Consumer>>> = BTreeMap::new();
                    for pid in &receiving {
                        if reg.factory.stability(from, pid.signal).is_none() {
                            errors.push(format!(
                                "connector \"{cid}\" cannot connect {from} to {} (pipeline \"{pid}\")",
                                pid.signal
                            ));
                            continue;
                        }
                        if let Some(e) = entries.get(*pid) {
                            per_signal.entry(pid.signal).or_default().push(e.clone());
                        }
                    }
                    for (signal, list) in per_signal {
                        to.set(signal, FanOut::over(list));
                    }
                    match reg
                        .factory
                        .create(settings(cid), entry.config.as_ref(), from, to)
                    {
                        Ok(c) => {
                            nodes.push(Node {
                                kind: Kind::Connector,
                                label: format!("{cid} ({from})"),
                                component: c.clone(),
                            });
                            connectors.insert((cid.clone(), from), c);
                        }
                        Err(err) => {
                            errors.push(format!("failed to create connector \"{cid}\": {err}"))
                        }
                    }
                }
            }
            // Pipelines whose connectors are all built.
            for (pid, pipeline) in &config.pipelines {
                if entries.contains_key(pid) {
                    continue;
                }
                let mut outs: Vec<Arc<dyn Consumer>> = Vec::new();
                let mut ready = true;
                for id in &pipeline.exporters {
                    if config.connectors.contains_key(id) {
                        match connectors.get(&(id.clone(), pid.signal)) {
                            Some(c) => outs.push(c.clone()),
                            None => ready = false,
                        }
                    } else if let Some(e) = exporters.get(id) {
                        outs.push(e.clone());
                    }
                }
                if !ready {
                    continue;
                }
                let mut next: Arc<dyn Consumer> = FanOut::over(outs);
                for id in pipeline.processors.iter().rev() {
                    let (Some(entry), Some(reg)) = (
                        config.processors.get(id),
                        registry.processors.get(id.kind()),
                    ) else {
                        continue;
                    };
                    let ProcessorMetrics { incoming, outgoing } =
                        telemetry.processor(&id.to_string(), pid.signal);
                    let counted_next: Arc<dyn Consumer> = Arc::new(Counted {
                        inner: next,
                        counter: outgoing,
                    });
                    match reg.factory.create(
                        settings(id),
                        entry.config.as_ref(),
                        pid.signal,
                        counted_next.clone(),
                    ) {
                        Ok(p) => {
                            nodes.push(Node {
                                kind: Kind::Processor,
                                label: format!("{id} in {pid}"),
                                component: p.clone(),
                            });
                            next = Arc::new(Counted {
                                inner: p,
                                counter: incoming,
                            });
                        }
                        Err(err) => {
                            errors.push(format!(
                                "failed to create processor \"{id}\" in pipeline \"{pid}\": {err}"
                            ));
                            next = counted_next;
                        }
                    }
                }
                entries.insert(pid.clone(), next);
            }
            if entries.len() + connectors.len() == before {
                errors.push("pipelines could not be ordered: connectors form a cycle".to_string());
                break;
            }
        }

        // Receivers: one instance per ID, fanning in to every pipeline that names it.
        let mut receiver_ids: Vec<&ComponentId> = Vec::new();
        for pipeline in config.pipelines.values() {
            for id in &pipeline.receivers {
                if config.receivers.contains_key(id) && !receiver_ids.contains(&id) {
                    receiver_ids.push(id);
                }
            }
        }
        for id in receiver_ids {
            let (Some(entry), Some(reg)) =
                (config.receivers.get(id), registry.receivers.get(id.kind()))
            else {
                continue;
            };
            let mut consumers = SignalConsumers::default();
            for signal in Signal::ALL {
                let list: Vec<Arc<dyn Consumer>> = config
                    .pipelines
                    .iter()
                    .filter(|(pid, p)| pid.signal == signal && p.receivers.contains(id))
                    .filter_map(|(pid, _)| entries.get(pid).cloned())
                    .collect();
                if !list.is_empty() {
                    consumers.set(signal, FanOut::over(list));
                }
            }
            match reg
                .factory
                .create(settings(id), entry.config.as_ref(), consumers)
            {
                Ok(component) => nodes.push(Node {
                    kind: Kind::Receiver,
                    label: id.to_string(),
                    component,
                }),
                Err(err) => errors.push(format!("failed to create receiver \"{id}\": {err}")),
            }
        }

        if errors.is_empty() {
            Ok(Service {
                nodes,
                host,
                status,
            })
        } else {
            Err(BuildErrors(errors))
        }
    }

    /// A handle on the agent's status (Starting, Ready, Stopping).
    pub fn status(&self) -> watch::Receiver<ServiceStatus> {
        self.host.status.clone()
    }

    /// Starts everything downstream-first; on a failure, stops what already started.
    pub async fn start(&self) -> Result<(), ComponentError> {
        for (index, node) in self.nodes.iter().enumerate() {
            let span = tracing::info_span!("start", kind = node.kind.as_str(), id = %node.label);
            if let Err(err) = node.component.start(&self.host).instrument(span).await {
                let message = format!(
                    "failed to start {} \"{}\": {err}",
                    node.kind.as_str(),
                    node.label
                );
                for started in self.nodes[..index].iter().rev() {
                    let _ = started.component.shutdown().await;
                }
                return Err(ComponentError(message));
            }
        }
        self.status.send_replace(ServiceStatus::Ready);
        info!("Everything is ready. Begin running and processing data.");
        Ok(())
    }

    /// Stops receivers first, then processors (which flush), then exporters (which drain),
    /// then extensions. Receivers, exporters and extensions stop all at once within their
    /// stage; processors and connectors one after another, upstream first, so each flushes
    /// into a stage that is still running. Everything shares the one `deadline`.
    pub async fn shutdown(&self, deadline: Duration) {
        self.status.send_replace(ServiceStatus::Stopping);
        let until = tokio::time::Instant::now() + deadline;
        let of = |kind: Kind| -> Vec<&Node> {
            self.nodes.iter().filter(|n| n.kind == kind).rev().collect()
        };
        let middle: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, Kind::Processor | Kind::Connector))
            .rev()
            .collect();
        let stages: [(Vec<&Node>, bool); 4] = [
            (of(Kind::Receiver), true),
            (middle, false),
            (of(Kind::Exporter), true),
            (of(Kind::Extension), true),
        ];
        for (nodes, together) in stages {
            if together {
                let all = futures::future::join_all(nodes.iter().map(|n| stop(n, until)));
                all.await;
            } else {
                for node in nodes {
                    stop(node, until).await;
                }
            }
        }
    }
}

async fn stop(node: &Node, until: tokio::time::Instant) {
    let span = tracing::info_span!("shutdown", kind = node.kind.as_str(), id = %node.label);
    match tokio::time::timeout_at(until, node.component.shutdown().instrument(span)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            error!(kind = node.kind.as_str(), id = %node.label, error = %err, "Failed to shut down cleanly")
        }
        Err(_) => {
            warn!(kind = node.kind.as_str(), id = %node.label, "Shutdown deadline passed before this component finished")
        }
    }
}

#[cfg(test)]
mod tests;
