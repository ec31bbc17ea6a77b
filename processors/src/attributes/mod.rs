//! The `attributes` processor: runs a list of attribute actions on every span, log record
//! or metric data point that its `include`/`exclude` properties select. Items it does not
//! select pass untouched.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

use ferrotel_pipeline::attraction::{ActionContext, Actions};
use ferrotel_pipeline::component::{
    config_as, ClientInfo, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::filterset::Matcher;
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::{Logs, Metrics, Payload, Signal, Traces};

pub use config::AttributesConfig;

pub struct AttributesProcessorFactory;

impl Factory for AttributesProcessorFactory {
    fn type_name(&self) -> &'static str {
        "attributes"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<AttributesConfig>(value)
    }
}

impl ProcessorFactory for AttributesProcessorFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        _settings: CreateSettings,
        config: &dyn ComponentConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<AttributesConfig>(config)?;
        let processor = AttributesProcessor::new(config, signal, next).map_err(ComponentError)?;
        Ok(Arc::new(processor))
    }
}

pub struct AttributesProcessor {
    actions: Actions,
    matcher: Matcher,
    next: Arc<dyn Consumer>,
}

impl AttributesProcessor {
    /// Compiles the actions and the include/exclude properties for `signal`; the errors are
    /// upstream's.
    pub fn new(
        config: &AttributesConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Self, String> {
        let actions = Actions::new(&config.actions).map_err(|e| e.to_string())?;
        let matcher = Matcher::new(config.include.as_ref(), config.exclude.as_ref(), signal)?;
        Ok(AttributesProcessor {
            actions,
            matcher,
            next,
        })
    }

    /// Edits a decoded batch in place; an encoded one is left as it is.
    pub fn process(&self, payload: &mut Payload, client: Option<&ClientInfo>) {
        let context = ActionContext::new(client);
        match payload {
            Payload::Traces(traces) => self.process_traces(traces, &context),
            Payload::Metrics(metrics) => self.process_metrics(metrics, &context),
            Payload::Logs(logs) => self.process_logs(logs, &context),
            Payload::Encoded(_) => {}
        }
    }

    fn process_traces(&self, traces: &mut Traces, context: &ActionContext<'_>) {
        for rs in &mut traces.0.resource_spans {
            let resource = rs.resource.as_ref();
            for ss in &mut rs.scope_spans {
                let scope = ss.scope.as_ref();
                for span in &mut ss.spans {
                    if self.matcher.matches_span(resource, scope, span) {
                        self.actions.apply(&mut span.attributes, context);
                    }
                }
            }
        }
    }

    fn process_logs(&self, logs: &mut Logs, context: &ActionContext<'_>) {
        for rl in &mut logs.0.resource_logs {
            let resource = rl.resource.as_ref();
            for sl in &mut rl.scope_logs {
                let scope = sl.scope.as_ref();
                for record in &mut sl.log_records {
                    if self.matcher.matches_log(resource, scope, record) {
                        self.actions.apply(&mut record.attributes, context);
                    }
                }
            }
        }
    }

    /// Metrics are selected whole; the actions then run on every data point's attributes.
    fn process_metrics(&self, metrics: &mut Metrics, context: &ActionContext<'_>) {
        for rm in &mut metrics.0.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &mut rm.scope_metrics {
                let scope = sm.scope.as_ref();
                for metric in &mut sm.metrics {
                    if !self.matcher.matches_metric(resource, scope, metric) {
                        continue;
                    }
                    match &mut metric.data {
                        Some(Data::Gauge(g)) => {
                            for dp in &mut g.data_points {
                                self.actions.apply(&mut dp.attributes, context);
                            }
                        }
                        Some(Data::Sum(s)) => {
                            for dp in &mut s.data_points {
                                self.actions.apply(&mut dp.attributes, context);
                            }
                        }
                        Some(Data::Histogram(h)) => {
                            for dp in &mut h.data_points {
                                self.actions.apply(&mut dp.attributes, context);
                            }
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            for dp in &mut h.data_points {
                                self.actions.apply(&mut dp.attributes, context);
                            }
                        }
                        Some(Data::Summary(s)) => {
                            for dp in &mut s.data_points {
                                self.actions.apply(&mut dp.attributes, context);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for AttributesProcessor {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        let client = envelope.client.clone();
        let payload = envelope.payload_mut();
        payload
            .decode_in_place()
            .map_err(|err| ConsumeError::invalid(err.to_string()))?;
        self.process(payload, client.as_deref());
        self.next.consume(envelope).await
    }
}

#[async_trait]
impl Component for AttributesProcessor {}
