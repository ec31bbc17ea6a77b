//! The agent's own logs: level and encoding from `service::telemetry::logs`.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::service::{LogEncoding, LogLevel, LogsTelemetry};

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Dpanic | LogLevel::Panic | LogLevel::Fatal => "error",
    }
}

fn writer(paths: &[String]) -> Result<BoxMakeWriter, String> {
    match paths.first().map(String::as_str) {
        None | Some("stderr") => Ok(BoxMakeWriter::new(std::io::stderr)),
        Some("stdout") => Ok(BoxMakeWriter::new(std::io::stdout)),
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log output \"{path}\": {e}"))?;
            Ok(BoxMakeWriter::new(Mutex::new(file)))
        }
    }
}

/// Installs the global subscriber. Library noise (HTTP/2 internals) is kept at warn unless
/// the level is debug.
pub fn init(config: &LogsTelemetry) -> Result<(), String> {
    let level = level_name(config.level);
    let quiet = if config.level == LogLevel::Debug {
        "info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_new(format!(
        "{level},h2={quiet},hyper={quiet},hyper_util={quiet},tonic={quiet},tower={quiet},rustls={quiet}"
    ))
    .map_err(|e| e.to_string())?;
    let make_writer = writer(&config.output_paths)?;
    let to_terminal = match config.output_paths.first().map(String::as_str) {
        None | Some("stderr") => std::io::stderr().is_terminal(),
        Some("stdout") => std::io::stdout().is_terminal(),
        Some(_) => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(make_writer)
        .with_ansi(to_terminal)
        .with_target(false);
    let result = match config.encoding {
        LogEncoding::Json => builder.json().flatten_event(true).try_init(),
        LogEncoding::Console => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}
