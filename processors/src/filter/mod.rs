//! The `filter` processor: drops the items for which any OTTL condition holds. Conditions
//! are compiled once at start. A metric left without data points is dropped, and so are
//! scopes and resources left empty. What it drops is counted in
//! `otelcol_processor_filter_{spans,datapoints,logs}_filtered`.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::IntCounter;

use ferrotel_ottl::groups::CompiledConditions;
use ferrotel_ottl::{walk, ContextKind, Item};
use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};

pub use config::FilterConfig;
use config::Legacy;

pub struct FilterProcessorFactory;

impl Factory for FilterProcessorFactory {
    fn type_name(&self) -> &'static str {
        "filter"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<FilterConfig>(value)
    }
}

impl ProcessorFactory for FilterProcessorFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<FilterConfig>(config)?;
        let groups = config.compile(signal).map_err(ComponentError::new)?;
        let legacy = config.legacy(signal).map_err(ComponentError::new)?;
        let id = settings.id.to_string();
        Ok(Arc::new(FilterProcessor {
            filtered: settings.telemetry.filter_processor(&id, signal),
            id,
            groups,
            legacy,
            next,
        }))
    }
}

pub struct FilterProcessor {
    id: String,
    groups: Vec<CompiledConditions>,
    legacy: Option<Legacy>,
    filtered: IntCounter,
    next: Arc<dyn Consumer>,
}

impl FilterProcessor {
    /// Drops what matches, in place.
    fn apply(&self, payload: &mut Payload) -> Result<(), String> {
        let id = self.id.as_str();
        if let Some(legacy) = &self.legacy {
            apply_legacy(legacy, payload);
        }
        for g in &self.groups {
            // A condition that holds drops the item.
            let keep = |ctx: &mut ferrotel_ottl::TransformContext| g.any(id, ctx).map(|hit| !hit);
            match payload {
                Payload::Traces(t) => walk::traces(&mut t.0.resource_spans, g.context, keep)?,
                Payload::Metrics(m) => walk::metrics(&mut m.0.resource_metrics, g.context, keep)?,
                Payload::Logs(l) => walk::logs(&mut l.0.resource_logs, g.context, keep)?,
                Payload::Encoded(_) => {}
            }
        }
        match payload {
            Payload::Traces(t) => walk::prune_traces(&mut t.0.resource_spans),
            Payload::Metrics(m) => walk::prune_metrics(&mut m.0.resource_metrics),
            Payload::Logs(l) => walk::prune_logs(&mut l.0.resource_logs),
            Payload::Encoded(_) => {}
        }
        Ok(())
    }
}

/// The older include/exclude form: keeps what it selects.
fn apply_legacy(legacy: &Legacy, payload: &mut Payload) {
    match (legacy, payload) {
        (Legacy::Spans(m), Payload::Traces(t)) => {
            let _ = walk::traces(&mut t.0.resource_spans, ContextKind::Span, |ctx| {
                let Item::Span(span) = &ctx.item else {
                    return Ok::<_, std::convert::Infallible>(true);
                };
                let scope = ctx.scope.as_ref().and_then(|(s, _)| s.as_ref());
                Ok(m.matches_span(ctx.resource.as_ref(), scope, span))
            });
        }
        (Legacy::Logs(m), Payload::Logs(l)) => {
            let _ = walk::logs(&mut l.0.resource_logs, ContextKind::Log, |ctx| {
                let Item::Log(log) = &ctx.item else {
                    return Ok::<_, std::convert::Infallible>(true);
                };
                let scope = ctx.scope.as_ref().and_then(|(s, _)| s.as_ref());
                Ok(m.matches_log(ctx.resource.as_ref(), scope, log))
            });
        }
        (Legacy::Metrics(f), Payload::Metrics(m)) => {
            m.0.resource_metrics
                .retain(|rm| !f.skips_resource(rm.resource.as_ref()));
            for rm in &mut m.0.resource_metrics {
                for sm in &mut rm.scope_metrics {
                    sm.metrics.retain(|metric| !f.skips_metric(metric));
                }
            }
        }
        _ => {}
    }
}

#[async_trait]
impl Consumer for FilterProcessor {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        if self.groups.is_empty() && self.legacy.is_none() {
            return self.next.consume(envelope).await;
        }
        let payload = envelope.payload_mut();
        payload
            .decode_in_place()
            .map_err(|e| ConsumeError::invalid(e.to_string()))?;
        let before = payload.item_count();
        self.apply(payload).map_err(ConsumeError::permanent)?;
        let after = payload.item_count();
        self.filtered.inc_by(before.saturating_sub(after) as u64);
        if payload.is_empty() {
            // Everything was dropped: nothing goes on, and the sender hears success.
            return Ok(Accepted::default());
        }
        self.next.consume(envelope).await
    }

    fn accepts_encoded(&self) -> bool {
        self.groups.is_empty() && self.legacy.is_none() && self.next.accepts_encoded()
    }
}

#[async_trait]
impl Component for FilterProcessor {}
