//! `transform` configuration: upstream's `error_mode` and the per-signal statement lists, in
//! the grouped `{context, statements, conditions, error_mode}` form or as flat statements whose
//! context is inferred from their paths.

use serde::Deserialize;

use ferrotel_ottl::groups::{compile_statements, CompiledStatements, StatementEntry};
use ferrotel_ottl::ErrorMode;
use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::pdata::Signal;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    /// What a failing statement does: `propagate` (the default) refuses the batch.
    pub error_mode: ErrorMode,
    pub trace_statements: Vec<StatementEntry>,
    pub metric_statements: Vec<StatementEntry>,
    pub log_statements: Vec<StatementEntry>,
    /// Upstream's log flattening; accepted only when off.
    pub flatten_data: bool,
}

impl TransformConfig {
    fn entries(&self, signal: Signal) -> (&'static str, &[StatementEntry]) {
        match signal {
            Signal::Traces => ("trace_statements", &self.trace_statements),
            Signal::Metrics => ("metric_statements", &self.metric_statements),
            Signal::Logs => ("log_statements", &self.log_statements),
        }
    }

    /// The compiled groups for one signal, in the order written.
    pub fn compile(&self, signal: Signal) -> Result<Vec<CompiledStatements>, String> {
        let (name, entries) = self.entries(signal);
        compile_statements(signal, entries, self.error_mode).map_err(|e| format!("{name}{e}"))
    }
}

impl Validate for TransformConfig {
    fn validate(&self) -> Result<(), String> {
        if self.flatten_data {
            return Err("flatten_data is not supported yet".to_string());
        }
        for signal in Signal::ALL {
            self.compile(signal)?;
        }
        Ok(())
    }
}

impl ComponentConfig for TransformConfig {}
