//! The agent's own logs: level and encoding from `service::telemetry::logs`.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::service::{LogEncoding, LogLevel, LogsTelemetry};

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Dpanic | LogLevel::Panic | LogLevel::Fatal => {
            LevelFilter::ERROR
        }
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
    let level = level_filter(config.level);
    let quiet = if config.level == LogLevel::Debug {
        LevelFilter::INFO
    } else {
        LevelFilter::WARN
    };
    // By target prefix, as an env-filter directive list would, without compiling its regexes.
    let mut filter = Targets::new().with_default(level);
    for noisy in ["h2", "hyper", "hyper_util", "tonic", "tower", "rustls"] {
        filter = filter.with_target(noisy, quiet);
    }
    let make_writer = writer(&config.output_paths)?;
    let to_terminal = match config.output_paths.first().map(String::as_str) {
        None | Some("stderr") => std::io::stderr().is_terminal(),
        Some("stdout") => std::io::stdout().is_terminal(),
        Some(_) => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(make_writer)
        .with_ansi(to_terminal)
        .with_target(false);
    let result = match config.encoding {
        LogEncoding::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init(),
        LogEncoding::Console => builder.finish().with(filter).try_init(),
    };
    result.map_err(|e| e.to_string())
}
