//! The `memory_limiter` processor with an injected memory source, and the total-memory
//! reader against cgroup and meminfo fixture files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use ferrotel_pipeline::component::{
    Accepted, Component, ConsumeResult, Consumer, CreateSettings, Envelope, ErrorKind, Host,
    ServiceStatus,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ProcessorFactory};
use ferrotel_pipeline::pdata::{logs, trace, ExportLogsServiceRequest, Logs, Payload, Signal};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_processors::memory_limiter::{
    Limits, MemoryLimiter, MemoryLimiterConfig, MemoryLimiterFactory, MemorySource, TotalMemory,
    DATA_REFUSED,
};

const MIB: u64 = 1024 * 1024;

/// Counts the items that reach it.
#[derive(Default)]
struct Sink {
    items: AtomicUsize,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.items
            .fetch_add(envelope.payload.item_count(), Ordering::SeqCst);
        Ok(Accepted::default())
    }
}

fn spans(n: usize) -> Envelope {
    Envelope::new(Payload::Traces(ferrotel_pipeline::pdata::Traces(
        ferrotel_pipeline::pdata::ExportTraceServiceRequest {
            resource_spans: vec![trace::ResourceSpans {
                scope_spans: vec![trace::ScopeSpans {
                    spans: vec![trace::Span::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )))
}

fn log_records(n: usize) -> Envelope {
    Envelope::new(Payload::Logs(Logs(ExportLogsServiceRequest {
        resource_logs: vec![logs::ResourceLogs {
            scope_logs: vec![logs::ScopeLogs {
                log_records: vec![logs::LogRecord::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })))
}

struct Fixture {
    limiter: MemoryLimiter,
    used: Arc<AtomicU64>,
    sink: Arc<Sink>,
    telemetry: Arc<Telemetry>,
}

/// A limiter with hard limit 100 MiB and spike 20 MiB (soft limit 80 MiB), reading the
/// memory use the test sets.
fn limiter(signal: Signal, check_interval: Duration) -> Fixture {
    let used = Arc::new(AtomicU64::new(0));
    let reading = used.clone();
    let source: Arc<dyn MemorySource> = Arc::new(move || Some(reading.load(Ordering::SeqCst)));
    let sink = Arc::new(Sink::default());
    let telemetry = Telemetry::for_tests();
    let limiter = MemoryLimiter::new(
        CreateSettings {
            id: ComponentId::new("memory_limiter", None),
            telemetry: telemetry.clone(),
        },
        check_interval,
        Limits {
            hard: 100 * MIB,
            soft: 80 * MIB,
        },
        source,
        signal,
        sink.clone(),
    );
    Fixture {
        limiter,
        used,
        sink,
        telemetry,
    }
}

fn host(telemetry: &Arc<Telemetry>) -> (Host, watch::Sender<ServiceStatus>) {
    let (tx, rx) = watch::channel(ServiceStatus::Ready);
    (
        Host {
            telemetry: telemetry.clone(),
            status: rx,
        },
        tx,
    )
}

#[tokio::test]
async fn passes_below_the_soft_limit_refuses_above_and_recovers() {
    let f = limiter(Signal::Traces, Duration::from_secs(1));
    f.used.store(50 * MIB, Ordering::SeqCst);
    assert!(!f.limiter.check_now());
    f.limiter.consume(spans(3)).await.unwrap();
    assert_eq!(f.sink.items.load(Ordering::SeqCst), 3);

    // At the soft limit (as upstream, the limit itself counts as above).
    f.used.store(80 * MIB, Ordering::SeqCst);
    assert!(f.limiter.check_now());
    let err = f.limiter.consume(spans(4)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.kind.is_retryable());
    assert_eq!(err.message, DATA_REFUSED);
    assert_eq!(err.message, "data refused due to high memory usage");
    assert_eq!(
        f.sink.items.load(Ordering::SeqCst),
        3,
        "refused data goes nowhere"
    );

    f.used.store(80 * MIB - 1, Ordering::SeqCst);
    assert!(!f.limiter.check_now());
    f.limiter.consume(spans(2)).await.unwrap();
    assert_eq!(f.sink.items.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn an_unreadable_source_keeps_the_current_state() {
    let sink = Arc::new(Sink::default());
    let readable = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let r = readable.clone();
    let limiter = MemoryLimiter::new(
        CreateSettings {
            id: ComponentId::new("memory_limiter", None),
            telemetry: Telemetry::for_tests(),
        },
        Duration::from_secs(1),
        Limits { hard: 10, soft: 8 },
        Arc::new(move || r.load(Ordering::SeqCst).then_some(9u64)),
        Signal::Traces,
        sink,
    );
    assert!(limiter.check_now());
    readable.store(false, Ordering::SeqCst);
    assert!(limiter.check_now(), "no reading: still refusing");
}

#[tokio::test(start_paused = true)]
async fn the_task_measures_every_check_interval() {
    let f = limiter(Signal::Traces, Duration::from_secs(1));
    let (host, _status) = host(&f.telemetry);
    f.limiter.start(&host).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!f.limiter.is_refusing(), "measured at start: 0 bytes");

    f.used.store(95 * MIB, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(980)).await;
    assert!(
        !f.limiter.is_refusing(),
        "not measured again before the interval"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(f.limiter.is_refusing(), "measured at 1s");
    assert_eq!(
        f.limiter.consume(spans(1)).await.unwrap_err().message,
        DATA_REFUSED
    );

    f.used.store(10 * MIB, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!f.limiter.is_refusing(), "measured at 2s");
    f.limiter.consume(spans(1)).await.unwrap();

    f.limiter.shutdown().await.unwrap();
    f.used.store(99 * MIB, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!f.limiter.is_refusing(), "no measuring after shutdown");
}

#[tokio::test]
async fn counts_accepted_and_refused_items_per_signal() {
    let f = limiter(Signal::Logs, Duration::from_secs(1));
    f.limiter.consume(log_records(5)).await.unwrap();
    f.used.store(90 * MIB, Ordering::SeqCst);
    f.limiter.check_now();
    f.limiter.consume(log_records(2)).await.unwrap_err();
    f.limiter.consume(log_records(1)).await.unwrap_err();

    let m = f.telemetry.memory_limiter("memory_limiter");
    assert_eq!(m.accepted.get(Signal::Logs), 5);
    assert_eq!(m.refused.get(Signal::Logs), 3);
    assert_eq!(m.accepted.get(Signal::Traces), 0);
    let text = f.telemetry.render();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("processor=\"memory_limiter\""))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(
        value("otelcol_processor_memory_limiter_accepted_log_records{").as_deref(),
        Some("5")
    );
    assert_eq!(
        value("otelcol_processor_memory_limiter_refused_log_records{").as_deref(),
        Some("3")
    );
    assert_eq!(
        value("otelcol_processor_memory_limiter_refused_spans{").as_deref(),
        Some("0")
    );
}

fn decode(yaml: &str) -> Result<Box<dyn ferrotel_pipeline::component::ComponentConfig>, String> {
    MemoryLimiterFactory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn the_factory_validates_with_upstreams_messages() {
    assert_eq!(
        decode("limit_mib: 100").err().unwrap(),
        "'check_interval' must be greater than zero"
    );
    assert_eq!(
        decode("check_interval: 1s").err().unwrap(),
        "'limit_mib' or 'limit_percentage' must be greater than zero"
    );
    assert_eq!(
        decode("check_interval: 1s\nlimit_mib: 50\nspike_limit_mib: 60")
            .err()
            .unwrap(),
        "'spike_limit_mib' must be smaller than 'limit_mib'"
    );
    assert!(
        decode("check_interval: 1s\nlimit_mib: 50\nmin_gc_interval_when_soft_limited: 5s").is_ok()
    );
}

#[tokio::test]
async fn the_factory_builds_a_limiter_from_fixed_limits() {
    let config = decode("check_interval: 1s\nlimit_mib: 400\nspike_limit_mib: 100").unwrap();
    let telemetry = Telemetry::for_tests();
    let sink = Arc::new(Sink::default());
    let processor = MemoryLimiterFactory
        .create(
            CreateSettings {
                id: ComponentId::new("memory_limiter", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            Signal::Traces,
            sink.clone(),
        )
        .unwrap();
    let (host, _status) = host(&telemetry);
    processor.start(&host).await.unwrap();
    // This test process uses far less than 300 MiB.
    processor.consume(spans(2)).await.unwrap();
    assert_eq!(sink.items.load(Ordering::SeqCst), 2);
    processor.shutdown().await.unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A reader over a fake filesystem in `dir`, with 8 GiB of physical memory.
fn fake_system(dir: &Path, self_cgroup: &str) -> TotalMemory {
    let reader = TotalMemory {
        cgroup_root: dir.join("sys/fs/cgroup"),
        self_cgroup: dir.join("proc/self/cgroup"),
        meminfo: dir.join("proc/meminfo"),
    };
    write(&reader.self_cgroup, self_cgroup);
    write(
        &reader.meminfo,
        "MemTotal:        8388608 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n",
    );
    std::fs::create_dir_all(&reader.cgroup_root).unwrap();
    reader
}

#[test]
fn cgroup_v2_memory_max_is_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "0::/\n");
    write(&reader.cgroup_root.join("memory.max"), "536870912\n");
    assert_eq!(reader.cgroup_limit(), Some(512 * MIB));
    assert_eq!(reader.total_bytes().unwrap(), 512 * MIB);
}

#[test]
fn cgroup_v2_own_cgroup_is_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "0::/system.slice/ferrotel.service\n");
    write(
        &reader
            .cgroup_root
            .join("system.slice/ferrotel.service/memory.max"),
        "268435456\n",
    );
    write(&reader.cgroup_root.join("memory.max"), "max\n");
    assert_eq!(reader.total_bytes().unwrap(), 256 * MIB);
}

#[test]
fn cgroup_v2_max_means_no_limit_and_meminfo_counts() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "0::/\n");
    write(&reader.cgroup_root.join("memory.max"), "max\n");
    assert_eq!(reader.cgroup_limit(), None);
    assert_eq!(reader.total_bytes().unwrap(), 8 * 1024 * MIB);
}

#[test]
fn cgroup_v1_limit_in_bytes_is_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "12:cpu,cpuacct:/\n11:memory:/\n0::/\n");
    write(
        &reader.cgroup_root.join("memory/memory.limit_in_bytes"),
        "1073741824\n",
    );
    assert_eq!(reader.total_bytes().unwrap(), 1024 * MIB);
}

#[test]
fn cgroup_v1_unlimited_falls_back_to_meminfo() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "11:memory:/docker/abc\n");
    write(
        &reader
            .cgroup_root
            .join("memory/docker/abc/memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    assert_eq!(reader.cgroup_limit(), None);
    assert_eq!(reader.total_bytes().unwrap(), 8 * 1024 * MIB);
}

#[test]
fn a_cgroup_limit_above_physical_memory_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "0::/\n");
    write(
        &reader.cgroup_root.join("memory.max"),
        &(64 * 1024 * MIB).to_string(),
    );
    assert_eq!(reader.total_bytes().unwrap(), 8 * 1024 * MIB);
}

#[test]
fn nothing_readable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let reader = TotalMemory {
        cgroup_root: dir.path().join("none"),
        self_cgroup: dir.path().join("none"),
        meminfo: dir.path().join("none"),
    };
    assert!(reader.total_bytes().unwrap_err().contains("cannot read"));
}

#[test]
fn percentage_limits_follow_the_cgroup_total() {
    let dir = tempfile::tempdir().unwrap();
    let reader = fake_system(dir.path(), "0::/\n");
    write(&reader.cgroup_root.join("memory.max"), "1048576000\n");
    let config: MemoryLimiterConfig = ferrotel_pipeline::config::decode::decode(
        &Value::from_yaml_str(
            "check_interval: 1s\nlimit_percentage: 80\nspike_limit_percentage: 20",
        )
        .unwrap(),
    )
    .unwrap();
    let limits = Limits::from_config(&config, || reader.total_bytes()).unwrap();
    assert_eq!(limits.hard, 800 * MIB);
    assert_eq!(limits.soft, 600 * MIB);
}
