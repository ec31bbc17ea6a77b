//! The engine with small recording components: sharing, fan-in, fan-out, connectors and
//! the start and stop order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;

use super::*;
use crate::component::{Accepted, ComponentConfig, ConsumeError};
use crate::config::decode::DecodeError;
use crate::config::resolve::resolve;
use crate::config::value::Value;
use crate::factory::{
    decode_config, ConnectorFactory, ExporterFactory, ExtensionFactory, Factory, ProcessorFactory,
    ReceiverFactory, Stability, Validate,
};
use crate::pdata::{trace, ExportTraceServiceRequest, Payload, Traces};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Empty {
    refuse: bool,
}
impl Validate for Empty {}
impl ComponentConfig for Empty {}

#[derive(Default)]
struct World {
    events: Mutex<Vec<String>>,
    receivers: Mutex<HashMap<String, SignalConsumers>>,
    received: Mutex<HashMap<String, usize>>,
}

impl World {
    fn log(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
}

struct Node {
    world: Arc<World>,
    name: String,
    next: Option<Arc<dyn Consumer>>,
    refuse: bool,
}

#[async_trait]
impl Component for Node {
    async fn start(&self, _: &Host) -> Result<(), ComponentError> {
        self.world.log(format!("start {}", self.name));
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.world.log(format!("stop {}", self.name));
        Ok(())
    }
}

#[async_trait]
impl Consumer for Node {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        if self.refuse {
            return Err(ConsumeError::unavailable("refused"));
        }
        *self
            .world
            .received
            .lock()
            .unwrap()
            .entry(self.name.clone())
            .or_default() += envelope.payload.item_count();
        match &self.next {
            Some(next) => next.consume(envelope).await,
            None => Ok(Accepted::default()),
        }
    }
}

struct Fake(&'static str, Arc<World>);

impl Fake {
    fn node(
        &self,
        id: &ComponentId,
        next: Option<Arc<dyn Consumer>>,
        config: &dyn ComponentConfig,
    ) -> Arc<Node> {
        let refuse = crate::component::config_as::<Empty>(config)
            .map(|c| c.refuse)
            .unwrap_or(false);
        Arc::new(Node {
            world: self.1.clone(),
            name: format!("{}:{id}", self.0),
            next,
            refuse,
        })
    }
}

impl Factory for Fake {
    fn type_name(&self) -> &'static str {
        self.0
    }
    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<Empty>(value)
    }
}

impl ReceiverFactory for Fake {
    fn stability(&self, _: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }
    fn create(
        &self,
        s: CreateSettings,
        c: &dyn ComponentConfig,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        self.1
            .receivers
            .lock()
            .unwrap()
            .insert(s.id.to_string(), consumers);
        Ok(self.node(&s.id, None, c))
    }
}

impl ProcessorFactory for Fake {
    fn stability(&self, _: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }
    fn create(
        &self,
        s: CreateSettings,
        c: &dyn ComponentConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let id = ComponentId::new(s.id.kind(), Some(&format!("{}@{signal}", s.id)));
        Ok(self.node(&id, Some(next), c))
    }
}

impl ExporterFactory for Fake {
    fn stability(&self, _: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }
    fn create(
        &self,
        s: CreateSettings,
        c: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        Ok(self.node(&s.id, None, c))
    }
}

impl ConnectorFactory for Fake {
    fn stability(&self, from: Signal, to: Signal) -> Option<Stability> {
        (from == to).then_some(Stability::Beta)
    }
    fn create(
        &self,
        s: CreateSettings,
        c: &dyn ComponentConfig,
        from: Signal,
        to: SignalConsumers,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        Ok(self.node(&s.id, to.get(from).cloned(), c))
    }
}

impl ExtensionFactory for Fake {
    fn stability(&self) -> Stability {
        Stability::Beta
    }
    fn create(
        &self,
        s: CreateSettings,
        c: &dyn ComponentConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        Ok(self.node(&s.id, None, c))
    }
}

fn build(yaml: &str) -> (Service, Arc<World>) {
    let world = Arc::new(World::default());
    let mut r = Registry::default();
    r.add_receiver(Arc::new(Fake("recv", world.clone())));
    r.add_processor(Arc::new(Fake("proc", world.clone())));
    r.add_exporter(Arc::new(Fake("exp", world.clone())));
    r.add_connector(Arc::new(Fake("conn", world.clone())));
    r.add_extension(Arc::new(Fake("ext", world.clone())));
    let resolved = resolve(&[format!("yaml:{yaml}")], &[], &|_| None).unwrap();
    let config = crate::config::load(&resolved, &r).unwrap();
    let service = Service::build(&config, &r, Telemetry::for_tests()).unwrap();
    (service, world)
}

fn spans(n: usize) -> Envelope {
    Envelope::new(Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: vec![trace::ResourceSpans {
            scope_spans: vec![trace::ScopeSpans {
                spans: vec![trace::Span::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })))
}

const GRAPH: &str = "
receivers: {recv/1: {}, recv/2: {}, recv/unused: {}}
processors: {proc: {}}
exporters: {exp/1: {}, exp/2: {}}
connectors: {conn: {}}
extensions: {ext: {}}
service:
  extensions: [ext]
  pipelines:
    traces/a: {receivers: [recv/1], processors: [proc], exporters: [exp/1, exp/2]}
    traces/b: {receivers: [recv/1, recv/2], exporters: [exp/2, conn]}
    traces/c: {receivers: [conn], exporters: [exp/1]}
";

#[tokio::test]
async fn shares_instances_fans_in_and_out_and_connects() {
    let (service, world) = build(GRAPH);
    service.start().await.unwrap();
    assert_eq!(*service.status().borrow(), ServiceStatus::Ready);
    let r1 = world
        .receivers
        .lock()
        .unwrap()
        .get("recv/1")
        .cloned()
        .unwrap();
    let r2 = world
        .receivers
        .lock()
        .unwrap()
        .get("recv/2")
        .cloned()
        .unwrap();
    assert!(
        !world.receivers.lock().unwrap().contains_key("recv/unused"),
        "unused receivers are not built"
    );
    assert!(r1.metrics.is_none() && r1.logs.is_none());
    r1.traces.as_ref().unwrap().consume(spans(3)).await.unwrap();
    r2.traces.as_ref().unwrap().consume(spans(5)).await.unwrap();
    let got = world.received.lock().unwrap().clone();
    // recv/1 feeds traces/a (proc -> exp/1, exp/2) and traces/b (exp/2, conn -> traces/c -> exp/1);
    // recv/2 feeds traces/b only.
    assert_eq!(got.get("proc:proc/proc@traces"), Some(&3), "{got:?}");
    assert_eq!(got.get("exp:exp/2"), Some(&(3 + 3 + 5)));
    assert_eq!(got.get("conn:conn"), Some(&(3 + 5)));
    assert_eq!(got.get("exp:exp/1"), Some(&(3 + 3 + 5)));
    service.shutdown(Duration::from_secs(5)).await;
    assert_eq!(*service.status().borrow(), ServiceStatus::Stopping);

    let events = world.events.lock().unwrap().clone();
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} missing in {events:?}"))
    };
    // Start: extensions, exporters, then downstream pipelines before the connector feeding them, receivers last.
    assert!(pos("start ext:ext") < pos("start exp:exp/1"));
    assert!(pos("start exp:exp/1") < pos("start conn:conn"));
    assert!(pos("start conn:conn") < pos("start recv:recv/1"));
    assert!(pos("start proc:proc/proc@traces") < pos("start recv:recv/1"));
    // Stop: receivers first, then processors and connectors, exporters, extensions last.
    assert!(pos("stop recv:recv/1") < pos("stop proc:proc/proc@traces"));
    assert!(pos("stop recv:recv/2") < pos("stop conn:conn"));
    assert!(pos("stop conn:conn") < pos("stop exp:exp/1"));
    assert!(pos("stop exp:exp/2") < pos("stop ext:ext"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("start exp:exp/2"))
            .count(),
        1,
        "one instance per exporter ID"
    );
}

#[tokio::test]
async fn a_refusing_branch_is_reported_to_the_receiver() {
    let (service, world) = build(
        "
receivers: {recv: {}}
exporters: {exp/ok: {}, exp/no: {refuse: true}}
service:
  pipelines:
    traces: {receivers: [recv], exporters: [exp/no, exp/ok]}
",
    );
    service.start().await.unwrap();
    let r = world
        .receivers
        .lock()
        .unwrap()
        .get("recv")
        .cloned()
        .unwrap();
    let err = r
        .traces
        .as_ref()
        .unwrap()
        .consume(spans(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind, crate::component::ErrorKind::Unavailable);
    // The other branch still got its copy.
    assert_eq!(world.received.lock().unwrap().get("exp:exp/ok"), Some(&2));
    service.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn processor_items_are_counted() {
    let (service, world) = build(
        "
receivers: {recv: {}}
processors: {proc: {}}
exporters: {exp: {}}
service:
  pipelines:
    traces: {receivers: [recv], processors: [proc], exporters: [exp]}
",
    );
    service.start().await.unwrap();
    let r = world
        .receivers
        .lock()
        .unwrap()
        .get("recv")
        .cloned()
        .unwrap();
    r.traces.as_ref().unwrap().consume(spans(4)).await.unwrap();
    let text = service.host.telemetry.render();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("processor=\"proc\""))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("otelcol_processor_incoming_items{").ends_with(" 4"),
        "{text}"
    );
    assert!(
        line("otelcol_processor_outgoing_items{").ends_with(" 4"),
        "{text}"
    );
    service.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_partly_taken_fan_out_says_so() {
    let (service, world) = build(
        "
receivers: {recv: {}}
exporters: {exp/ok: {}, exp/no: {refuse: true}}
service:
  pipelines:
    traces: {receivers: [recv], exporters: [exp/ok, exp/no]}
",
    );
    service.start().await.unwrap();
    let r = world
        .receivers
        .lock()
        .unwrap()
        .get("recv")
        .cloned()
        .unwrap();
    let err = r
        .traces
        .as_ref()
        .unwrap()
        .consume(spans(1))
        .await
        .unwrap_err();
    assert!(
        err.partial,
        "one branch took it: resending would duplicate it there"
    );
    service.shutdown(Duration::from_secs(5)).await;
}
