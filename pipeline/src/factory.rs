//! Factories build components from their typed configs; the registry maps YAML types to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::component::{
    Component, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings, SignalConsumers,
};
use crate::config::decode::{decode, DecodeError};
use crate::config::value::Value;
use crate::pdata::Signal;

/// How mature a component is for one signal, as upstream labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    Development,
    Alpha,
    Beta,
    Stable,
}

impl Stability {
    pub fn as_str(self) -> &'static str {
        match self {
            Stability::Development => "Development",
            Stability::Alpha => "Alpha",
            Stability::Beta => "Beta",
            Stability::Stable => "Stable",
        }
    }
}

/// Config types implement this to check what decoding alone cannot (pure: no I/O).
pub trait Validate {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Decodes a subtree into `T` and validates it: what most factories' `decode` is.
pub fn decode_config<T>(value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError>
where
    T: DeserializeOwned + Validate + ComponentConfig,
{
    let config: T = decode(value)?;
    config.validate().map_err(|message| DecodeError {
        path: Vec::new(),
        message,
    })?;
    Ok(Box::new(config))
}

/// What every factory tells about itself.
pub trait Factory: Send + Sync {
    /// The YAML type, e.g. `otlp`.
    fn type_name(&self) -> &'static str;
    /// Decodes and validates a config subtree (null means all defaults).
    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError>;
}

#[async_trait]
pub trait ReceiverFactory: Factory {
    /// Stability per signal; `None` for a signal it does not support.
    fn stability(&self, signal: Signal) -> Option<Stability>;
    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError>;
}

pub trait ProcessorFactory: Factory {
    fn stability(&self, signal: Signal) -> Option<Stability>;
    /// One instance per pipeline, feeding `next`.
    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        signal: Signal,
        next: Arc<dyn crate::component::Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError>;
}

pub trait ExporterFactory: Factory {
    fn stability(&self, signal: Signal) -> Option<Stability>;
    /// One instance per component ID, shared by every pipeline that names it.
    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError>;
}

pub trait ConnectorFactory: Factory {
    /// Stability for data entering as `from` and leaving as `to`; `None` if unsupported.
    fn stability(&self, from: Signal, to: Signal) -> Option<Stability>;
    /// The exporting side for signal `from`, feeding the receiving side's pipelines.
    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        from: Signal,
        to: SignalConsumers,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError>;
}

pub trait ExtensionFactory: Factory {
    fn stability(&self) -> Stability;
    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn Component>, ComponentError>;
}

/// A registered factory with its registered name (a deprecated alias points at the current one).
pub struct Registered<F: ?Sized> {
    pub factory: Arc<F>,
    /// For an alias: the current name to suggest.
    pub deprecated_for: Option<&'static str>,
}

/// All component types this binary knows, by kind.
#[derive(Default)]
pub struct Registry {
    pub receivers: BTreeMap<String, Registered<dyn ReceiverFactory>>,
    pub processors: BTreeMap<String, Registered<dyn ProcessorFactory>>,
    pub exporters: BTreeMap<String, Registered<dyn ExporterFactory>>,
    pub connectors: BTreeMap<String, Registered<dyn ConnectorFactory>>,
    pub extensions: BTreeMap<String, Registered<dyn ExtensionFactory>>,
}

macro_rules! registration {
    ($add:ident, $alias:ident, $field:ident, $trait:ident) => {
        pub fn $add(&mut self, factory: Arc<dyn $trait>) {
            self.$field.insert(
                factory.type_name().to_string(),
                Registered {
                    factory,
                    deprecated_for: None,
                },
            );
        }

        /// Registers `alias` as a deprecated name of an already registered type.
        pub fn $alias(&mut self, alias: &'static str, current: &'static str) {
            if let Some(existing) = self.$field.get(current) {
                let factory = existing.factory.clone();
                self.$field.insert(
                    alias.to_string(),
                    Registered {
                        factory,
                        deprecated_for: Some(current),
                    },
                );
            }
        }
    };
}

impl Registry {
    registration!(add_receiver, alias_receiver, receivers, ReceiverFactory);
    registration!(add_processor, alias_processor, processors, ProcessorFactory);
    registration!(add_exporter, alias_exporter, exporters, ExporterFactory);
    registration!(add_connector, alias_connector, connectors, ConnectorFactory);
    registration!(add_extension, alias_extension, extensions, ExtensionFactory);

    /// The names registered for one section, for "valid values" lists.
    pub fn names(&self, section: Section) -> Vec<&str> {
        match section {
            Section::Receivers => self.receivers.keys().map(String::as_str).collect(),
            Section::Processors => self.processors.keys().map(String::as_str).collect(),
            Section::Exporters => self.exporters.keys().map(String::as_str).collect(),
            Section::Connectors => self.connectors.keys().map(String::as_str).collect(),
            Section::Extensions => self.extensions.keys().map(String::as_str).collect(),
        }
    }

    /// The factory (as its common part) and its deprecation for a type in a section.
    pub fn lookup(
        &self,
        section: Section,
        kind: &str,
    ) -> Option<(&dyn Factory, Option<&'static str>)> {
        match section {
            Section::Receivers => self
                .receivers
                .get(kind)
                .map(|r| (r.factory.as_ref() as &dyn Factory, r.deprecated_for)),
            Section::Processors => self
                .processors
                .get(kind)
                .map(|r| (r.factory.as_ref() as &dyn Factory, r.deprecated_for)),
            Section::Exporters => self
                .exporters
                .get(kind)
                .map(|r| (r.factory.as_ref() as &dyn Factory, r.deprecated_for)),
            Section::Connectors => self
                .connectors
                .get(kind)
                .map(|r| (r.factory.as_ref() as &dyn Factory, r.deprecated_for)),
            Section::Extensions => self
                .extensions
                .get(kind)
                .map(|r| (r.factory.as_ref() as &dyn Factory, r.deprecated_for)),
        }
    }
}

/// The component sections of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Receivers,
    Processors,
    Exporters,
    Connectors,
    Extensions,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Receivers,
        Section::Processors,
        Section::Exporters,
        Section::Connectors,
        Section::Extensions,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::Receivers => "receivers",
            Section::Processors => "processors",
            Section::Exporters => "exporters",
            Section::Connectors => "connectors",
            Section::Extensions => "extensions",
        }
    }

    /// Singular, as used in messages: "receiver", "processor", ...
    pub fn noun(self) -> &'static str {
        match self {
            Section::Receivers => "receiver",
            Section::Processors => "processor",
            Section::Exporters => "exporter",
            Section::Connectors => "connector",
            Section::Extensions => "extension",
        }
    }
}
