//! ferrotel: an OpenTelemetry agent that runs OpenTelemetry Collector configuration.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::{info, warn};

use ferrotel_pipeline::config::expand::NoteLevel;
use ferrotel_pipeline::config::service::MetricsLevel;
use ferrotel_pipeline::config::{self, redact, resolve};
use ferrotel_pipeline::factory::{Registry, Section};
use ferrotel_pipeline::pdata::Signal;
use ferrotel_pipeline::telemetry::{Naming, ServiceIdentity, Telemetry};
use ferrotel_pipeline::topology::Service;

const VERSION: &str = env!("CARGO_PKG_VERSION");

// jemalloc returns freed memory to the system over time and reports its live heap, which
// the memory_limiter processor and `otelcol_process_runtime_heap_alloc_bytes` read.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(not(target_env = "msvc"))]
fn heap_allocated() -> Option<u64> {
    // The statistics are a snapshot refreshed by advancing the epoch.
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    tikv_jemalloc_ctl::stats::allocated::read()
        .ok()
        .map(|b| b as u64)
}

/// How long a graceful shutdown may take before the agent exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    name = "ferrotel",
    version,
    about = "A lean OpenTelemetry agent that runs OpenTelemetry Collector configuration files.",
    after_help = "Examples:\n  ferrotel --config config.yaml\n  ferrotel --config base.yaml --config env:EXTRA_CONFIG --set exporters.debug.verbosity=detailed\n  ferrotel validate --config config.yaml\n  ferrotel print-config --config config.yaml"
)]
struct Cli {
    #[command(flatten)]
    sources: Sources,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone, Default)]
struct Sources {
    /// A configuration source: a file path, `file:PATH`, `env:VAR` or `yaml:INLINE`
    /// (keys joined with `::`). Repeat to merge several, later ones winning.
    #[arg(long = "config", value_name = "URI", global = true)]
    configs: Vec<String>,
    /// Set one value after all --config sources, e.g. `--set=processors.batch.timeout=2s`.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    sets: Vec<String>,
    /// Feature gates, comma separated (accepted for compatibility; none are defined yet).
    #[arg(long = "feature-gates", value_name = "GATES", global = true)]
    feature_gates: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration (decode every component and the pipelines) without starting anything.
    Validate,
    /// List every receiver, processor, exporter, connector and extension type, with its signals.
    Components,
    /// Print the effective configuration after merging and expansion, secrets redacted.
    #[command(alias = "print-initial-config")]
    PrintConfig {
        /// `redacted` hides tokens, passwords and header values; `unredacted` shows them.
        #[arg(long, value_enum, default_value_t = Mode::Redacted)]
        mode: Mode,
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// Also validate the configuration before printing.
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        validate: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Redacted,
    Unredacted,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

fn registry() -> Registry {
    let mut registry = Registry::default();
    ferrotel_receivers::register(&mut registry);
    ferrotel_processors::register(&mut registry);
    ferrotel_exporters::register(&mut registry);
    ferrotel_extensions::register(&mut registry);
    registry
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn resolve_sources(sources: &Sources) -> anyhow::Result<resolve::Resolved> {
    resolve::resolve(&sources.configs, &sources.sets, &env_lookup).map_err(|e| anyhow!("{e}"))
}

/// Decodes and validates; every problem is listed.
fn load(resolved: &resolve::Resolved, registry: &Registry) -> anyhow::Result<config::Config> {
    config::load(resolved, registry).map_err(|errors| {
        let mut text = format!(
            "invalid configuration ({} problem{}):",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for e in errors {
            text.push_str(&format!("\n  {e}"));
        }
        anyhow!(text)
    })
}

fn main() -> ExitCode {
    #[cfg(not(target_env = "msvc"))]
    ferrotel_pipeline::telemetry::set_heap_probe(heap_allocated);
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Components) => {
            print!("{}", components(&registry()));
            Ok(())
        }
        Some(Command::Validate) => validate(&cli.sources),
        Some(Command::PrintConfig {
            mode,
            format,
            validate,
        }) => print_config(&cli.sources, mode, format, validate),
        None => run(&cli.sources),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(sources: &Sources) -> anyhow::Result<()> {
    let registry = registry();
    let resolved = resolve_sources(sources)?;
    let config = load(&resolved, &registry)?;
    for note in &resolved.notes {
        eprintln!("warning: {} (name: {})", note.message, note.name);
    }
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

fn print_config(sources: &Sources, mode: Mode, format: Format, check: bool) -> anyhow::Result<()> {
    let resolved = resolve_sources(sources)?;
    if check {
        load(&resolved, &registry())?;
    }
    let tree = match mode {
        Mode::Redacted => redact::redact(&resolved.root),
        Mode::Unredacted => resolved.root.clone(),
    };
    match format {
        Format::Yaml => print!("{}", redact::to_yaml(&tree)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&tree.to_json())?),
    }
    Ok(())
}

fn components(registry: &Registry) -> String {
    let mut out = format!("buildinfo:\n  command: ferrotel\n  description: ferrotel OpenTelemetry agent\n  version: {VERSION}\n");
    let signals = |f: &dyn Fn(Signal) -> Option<ferrotel_pipeline::factory::Stability>| -> String {
        let mut s = String::new();
        for signal in Signal::ALL {
            if let Some(st) = f(signal) {
                s.push_str(&format!("        {signal}: {}\n", st.as_str()));
            }
        }
        s
    };
    for section in Section::ALL {
        out.push_str(&format!("{}:\n", section.key()));
        for name in registry.names(section) {
            let (deprecated, stability) = match section {
                Section::Receivers => registry
                    .receivers
                    .get(name)
                    .map(|r| (r.deprecated_for, signals(&|s| r.factory.stability(s)))),
                Section::Processors => registry
                    .processors
                    .get(name)
                    .map(|r| (r.deprecated_for, signals(&|s| r.factory.stability(s)))),
                Section::Exporters => registry
                    .exporters
                    .get(name)
                    .map(|r| (r.deprecated_for, signals(&|s| r.factory.stability(s)))),
                Section::Connectors => registry.connectors.get(name).map(|r| {
                    let mut s = String::new();
                    for from in Signal::ALL {
                        for to in Signal::ALL {
                            if let Some(st) = r.factory.stability(from, to) {
                                s.push_str(&format!("        {from}_to_{to}: {}\n", st.as_str()));
                            }
                        }
                    }
                    (r.deprecated_for, s)
                }),
                Section::Extensions => registry.extensions.get(name).map(|r| {
                    (
                        r.deprecated_for,
                        format!("        extension: {}\n", r.factory.stability().as_str()),
                    )
                }),
            }
            .unwrap_or((None, String::new()));
            out.push_str(&format!("  - name: {name}\n"));
            if let Some(current) = deprecated {
                out.push_str(&format!("    deprecated: use {current}\n"));
            }
            out.push_str("    stability:\n");
            out.push_str(&stability);
        }
    }
    out.push_str("providers:\n  - scheme: env\n  - scheme: file\n  - scheme: yaml\n");
    out
}

fn instance_id() -> String {
    // Unique enough to tell instances apart in the agent's own metrics.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos)
}

fn run(sources: &Sources) -> anyhow::Result<()> {
    let registry = registry();
    let resolved = resolve_sources(sources)?;
    let config = load(&resolved, &registry)?;
    ferrotel_pipeline::logging::init(&config.telemetry.logs)
        .map_err(|e| anyhow!("service::telemetry::logs: {e}"))?;
    for note in &resolved.notes {
        match note.level {
            NoteLevel::Warn => warn!(name = %note.name, "{}", note.message),
            NoteLevel::Info => info!(name = %note.name, "{}", note.message),
        }
    }
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrotel")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, registry))
}

async fn serve(config: config::Config, registry: Registry) -> anyhow::Result<()> {
    let endpoint = config.telemetry.metrics.endpoint();
    let naming = endpoint
        .as_ref()
        .map(|e| Naming {
            type_suffix: e.type_suffix,
            units: e.units,
        })
        .unwrap_or_default();
    let identity = ServiceIdentity {
        name: "ferrotel".to_string(),
        version: VERSION.to_string(),
        instance_id: instance_id(),
    };
    let telemetry: Arc<Telemetry> =
        Telemetry::new(naming, &identity).context("internal metrics registry")?;
    telemetry.set_detailed(config.telemetry.metrics.level == MetricsLevel::Detailed);
    info!(version = VERSION, "Starting ferrotel");
    let stop_metrics = tokio_util::sync::CancellationToken::new();
    let metrics_task = match &endpoint {
        Some(ep) => {
            let listener = ferrotel_pipeline::net::bind(&ep.address)
                .await
                .with_context(|| {
                    format!(
                        "service::telemetry::metrics: cannot listen on \"{}\"",
                        ep.address
                    )
                })?;
            info!(endpoint = ?listener.local_addr().ok(), "Serving the agent's own metrics");
            Some(ferrotel_pipeline::telemetry::serve_metrics(
                listener,
                telemetry.clone(),
                stop_metrics.clone(),
            ))
        }
        None => None,
    };
    let service = Service::build(&config, &registry, telemetry).map_err(|e| anyhow!("{e}"))?;
    service.start().await.map_err(|e| anyhow!("{e}"))?;
    wait_for_signal().await;
    info!("Shutdown requested; stopping receivers, flushing pipelines, draining exporters");
    service.shutdown(SHUTDOWN_DEADLINE).await;
    stop_metrics.cancel();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    info!("Shutdown complete.");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
