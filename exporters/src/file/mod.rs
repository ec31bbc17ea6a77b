//! The `file` exporter: every request as one line of OTLP/JSON (or a size-prefixed protobuf
//! message), as upstream's file exporter writes them; flushed on an interval and on shutdown.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope, Host,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability, Validate};
use ferrotel_pipeline::pdata::Signal;
use ferrotel_pipeline::telemetry::ExporterMetrics;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Proto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rotation {
    pub max_megabytes: u64,
    pub max_days: u64,
    pub max_backups: u64,
    pub localtime: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_megabytes: 100,
            max_days: 0,
            max_backups: 100,
            localtime: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupBy {
    pub enabled: bool,
    pub resource_attribute: Option<String>,
    pub max_open_files: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub path: String,
    pub append: bool,
    pub rotation: Option<Rotation>,
    pub format: Format,
    pub encoding: Option<String>,
    pub compression: String,
    pub flush_interval: GoDuration,
    pub group_by: Option<GroupBy>,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            path: String::new(),
            append: false,
            rotation: None,
            format: Format::Json,
            encoding: None,
            compression: String::new(),
            flush_interval: GoDuration::from_secs(1),
            group_by: None,
        }
    }
}

impl Validate for FileConfig {
    fn validate(&self) -> Result<(), String> {
        if self.path.is_empty() {
            return Err("path must be non-empty".to_string());
        }
        if self.append && !self.compression.is_empty() {
            return Err(
                "append and compression enabled at the same time is not supported".to_string(),
            );
        }
        if !matches!(self.compression.as_str(), "" | "zstd") {
            return Err(format!(
                "compression is not supported: \"{}\" (valid values: zstd)",
                self.compression
            ));
        }
        if self.encoding.is_some() {
            return Err(
                "encoding extensions are not supported yet; use format: json or proto".to_string(),
            );
        }
        if self.group_by.as_ref().is_some_and(|g| g.enabled) {
            return Err("group_by is not supported yet".to_string());
        }
        if let Some(r) = &self.rotation {
            if r.max_megabytes == 0 {
                return Err("rotation::max_megabytes must be greater than 0".to_string());
            }
        }
        Ok(())
    }
}

impl ComponentConfig for FileConfig {}

pub struct FileExporterFactory;

impl Factory for FileExporterFactory {
    fn type_name(&self) -> &'static str {
        "file"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<FileConfig>(value)
    }
}

impl ExporterFactory for FileExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Alpha)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<FileConfig>(config)?.clone();
        Ok(Arc::new(FileExporter {
            id: settings.id.to_string(),
            metrics: settings.telemetry.exporter(&settings.id.to_string()),
            config,
            writer: Arc::new(Mutex::new(None)),
            stop: CancellationToken::new(),
            flusher: Mutex::new(None),
        }))
    }
}

struct Output {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
    rotation: Option<Rotation>,
}

impl Output {
    fn open(path: &Path, append: bool, rotation: Option<Rotation>) -> std::io::Result<Output> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Output {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(64 * 1024, file),
            written,
            rotation,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(rotation) = &self.rotation {
            let limit = rotation.max_megabytes.saturating_mul(1024 * 1024);
            if self.written > 0 && self.written + bytes.len() as u64 > limit {
                self.rotate()?;
            }
        }
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Moves the current file aside as `name-<UTC timestamp>.ext` and starts a new one.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let stem = self
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("file")
            .to_string();
        let ext = self
            .path
            .extension()
            .and_then(|s| s.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let backup = self.path.with_file_name(format!("{stem}-{stamp}{ext}"));
        std::fs::rename(&self.path, &backup)?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(64 * 1024, file);
        self.written = 0;
        self.prune(&stem, &ext);
        Ok(())
    }

    fn prune(&self, stem: &str, ext: &str) {
        let Some(rotation) = &self.rotation else {
            return;
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = format!("{stem}-");
        let mut backups: Vec<(SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with(&prefix) && name.ends_with(ext)
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        backups.sort();
        let now = SystemTime::now();
        let keep = usize::try_from(rotation.max_backups).unwrap_or(usize::MAX);
        let excess = if rotation.max_backups > 0 {
            backups.len().saturating_sub(keep)
        } else {
            0
        };
        for (i, (modified, path)) in backups.iter().enumerate() {
            let too_old = rotation.max_days > 0
                && now
                    .duration_since(*modified)
                    .is_ok_and(|age| age > Duration::from_secs(rotation.max_days * 86_400));
            if i < excess || too_old {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

struct FileExporter {
    id: String,
    config: FileConfig,
    metrics: ExporterMetrics,
    writer: Arc<Mutex<Option<Output>>>,
    stop: CancellationToken,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl FileExporter {
    fn encode(&self, envelope: &Envelope) -> Result<Vec<u8>, ConsumeError> {
        let message = match self.config.format {
            Format::Json => envelope
                .payload
                .to_json()
                .map_err(|e| ConsumeError::permanent(format!("OTLP/JSON encoding: {e}")))?,
            Format::Proto => envelope.payload.to_protobuf(),
        };
        let message = if self.config.compression == "zstd" {
            zstd::encode_all(message.as_slice(), 3)
                .map_err(|e| ConsumeError::permanent(format!("zstd: {e}")))?
        } else {
            message
        };
        // JSON without compression is newline-delimited; everything else is size-prefixed.
        if self.config.format == Format::Json && self.config.compression.is_empty() {
            let mut line = message;
            line.push(b'\n');
            Ok(line)
        } else {
            let len = u32::try_from(message.len())
                .map_err(|_| ConsumeError::permanent("message larger than 4 GiB"))?;
            let mut framed = Vec::with_capacity(message.len() + 4);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&message);
            Ok(framed)
        }
    }
}

#[async_trait]
impl Consumer for FileExporter {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let signal = envelope.payload.signal();
        let items = envelope.payload.item_count();
        let bytes = match self.encode(&envelope) {
            Ok(b) => b,
            Err(err) => {
                self.metrics.send_failed.add(signal, items);
                return Err(err);
            }
        };
        let result = match self.writer.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(out) => out.write(&bytes).map_err(|e| e.to_string()),
                None => Err("the file is not open".to_string()),
            },
            Err(_) => Err("the file writer is unusable after a panic".to_string()),
        };
        match result {
            Ok(()) => {
                self.metrics.sent.add(signal, items);
                Ok(Accepted::default())
            }
            Err(message) => {
                error!(exporter = %self.id, path = %self.config.path, error = %message, "Failed to write to file");
                self.metrics.send_failed.add(signal, items);
                Err(ConsumeError::unavailable(format!(
                    "file exporter: {message}"
                )))
            }
        }
    }
}

fn flush(writer: &Mutex<Option<Output>>) -> std::io::Result<()> {
    match writer.lock() {
        Ok(mut guard) => match guard.as_mut() {
            Some(out) => out.file.flush(),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

#[async_trait]
impl Component for FileExporter {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let out = Output::open(
            Path::new(&self.config.path),
            self.config.append,
            self.config.rotation.clone(),
        )
        .map_err(|e| ComponentError::new(format!("cannot open \"{}\": {e}", self.config.path)))?;
        if let Ok(mut slot) = self.writer.lock() {
            *slot = Some(out);
        }
        let interval = self.config.flush_interval.get();
        if !interval.is_zero() {
            let writer = self.writer.clone();
            let stop = self.stop.clone();
            let id = self.id.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(err) = flush(&writer) {
                                warn!(exporter = %id, error = %err, "Failed to flush file");
                            }
                        }
                    }
                }
            });
            if let Ok(mut slot) = self.flusher.lock() {
                *slot = Some(task);
            }
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = self.flusher.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        flush(&self.writer)
            .map_err(|e| ComponentError::new(format!("flush \"{}\": {e}", self.config.path)))?;
        if let Ok(mut slot) = self.writer.lock() {
            slot.take();
        }
        Ok(())
    }
}
