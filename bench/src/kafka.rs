//! Kafka clients for the harness's Kafka scenarios, over librdkafka: `kafka-produce` fills a
//! topic with the load generator's trace requests (one `ExportTraceServiceRequest` per
//! record), `kafka-consume` reads a topic back with a fresh consumer group and counts
//! records, bytes and, when asked, spans and their `bench.seq` numbers; each prints one JSON
//! line. [`Watermarks`] reads how many records a topic holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientConfig;
use serde_json::json;

use crate::payload::{Shape, Signal, Templates, MAX_SEQ};
use crate::ranges::SeqSet;
use crate::sink::unix_ns;
use crate::wire::{self, Visitor};

/// Every call to the broker has this limit.
const CALL: Duration = Duration::from_secs(10);

#[derive(clap::Args, Clone, Debug)]
pub struct ProduceArgs {
    /// Bootstrap broker, `host:port`.
    #[arg(long)]
    pub brokers: String,
    #[arg(long)]
    pub topic: String,
    /// Records to write, each one export request.
    #[arg(long, default_value_t = 1000)]
    pub records: u64,
    /// Spans per record.
    #[arg(long, default_value_t = 512)]
    pub items_per_record: usize,
    /// First `bench.seq` number.
    #[arg(long, default_value_t = 0)]
    pub seq_start: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// librdkafka `compression.type`.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// librdkafka `linger.ms` (the kafka exporter's default: 10).
    #[arg(long, default_value_t = 10)]
    pub linger_ms: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Other librdkafka settings, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ConsumeArgs {
    /// Bootstrap broker, `host:port`.
    #[arg(long)]
    pub brokers: String,
    #[arg(long)]
    pub topic: String,
    /// Consumer group (use a fresh one: it starts at the earliest offset).
    #[arg(long)]
    pub group: String,
    /// Stop after this many records (0: what the topic held when the consumer started).
    #[arg(long, default_value_t = 0)]
    pub records: u64,
    /// Decode every record as an ExportTraceServiceRequest and count its spans and their
    /// `bench.seq` numbers (the JSON line then holds a report `check` can read).
    #[arg(long)]
    pub count_items: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Other librdkafka settings, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

/// Applies `key=value` settings.
fn apply(config: &mut ClientConfig, settings: &[String]) -> anyhow::Result<()> {
    for s in settings {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s:?}: expected key=value");
        };
        config.set(k.trim(), v.trim());
    }
    Ok(())
}

/// Delivery reports of the producer.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    last_unix_ns: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
                self.last_unix_ns.store(unix_ns(), Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// CPU seconds (user + system, every thread) and peak resident MiB of this process.
fn own_usage() -> (f64, f64) {
    let pid = std::process::id();
    let hz = crate::compare::clock_ticks_per_s();
    let cpu = crate::compare::cpu_ticks(pid).unwrap_or(0) as f64 / hz;
    let peak = crate::compare::proc_status_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    (cpu, peak)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Writes `records` trace requests to the topic, waits until the broker took every one, and
/// returns the JSON summary.
pub fn produce(args: &ProduceArgs) -> anyhow::Result<serde_json::Value> {
    let shape = Shape::new(Signal::Traces, args.items_per_record.max(1));
    let templates = Templates::build(
        &Shape {
            seed: args.seed,
            ..shape
        },
        false,
    );
    if !templates.stamps_ok() {
        bail!("internal error: the request templates lack their stamps");
    }
    let k = args.items_per_record.max(1) as u64;
    if args.seq_start + args.records * k > MAX_SEQ {
        bail!("sequence numbers would overflow their 12 digits");
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("acks", "1")
        .set("compression.type", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("message.max.bytes", "1000000")
        .set("message.timeout.ms", "60000")
        // What waits in librdkafka's queue stays within 256 MiB.
        .set("queue.buffering.max.kbytes", "262144");
    apply(&mut config, &args.settings)?;
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("create the Kafka producer")?;
    let timeout = Duration::from_secs_f64(args.timeout.max(1.0));
    let started = Instant::now();
    let deadline = started + timeout;
    let start_unix_ns = unix_ns();
    let mut buf = Vec::new();
    for n in 0..args.records {
        templates.render_into(n, args.seq_start + n * k, unix_ns(), &mut buf);
        loop {
            match producer.send(BaseRecord::<(), [u8]>::to(&args.topic).payload(&buf[..])) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if Instant::now() > deadline {
                        bail!("the producer's queue stayed full for {timeout:?}");
                    }
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("produce record {n}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    producer
        .flush(left.max(Duration::from_secs(1)))
        .with_context(|| format!("the broker did not take every record within {timeout:?}"))?;
    let ctx = producer.context();
    let ok = ctx.ok.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed);
    let bytes = ctx.bytes.load(Ordering::Relaxed);
    let last = ctx.last_unix_ns.load(Ordering::Relaxed).max(start_unix_ns);
    let secs = (last - start_unix_ns) as f64 / 1e9;
    let secs = secs.max(1e-3);
    let (cpu_s, peak_mib) = own_usage();
    let first_error = ctx.first_error.lock().ok().and_then(|e| e.clone());
    Ok(json!({
        "records": args.records,
        "delivered": ok,
        "failed": failed,
        "first_error": first_error,
        "bytes": bytes,
        "items": ok * k,
        "seq_start": args.seq_start,
        "seq_end": args.seq_start + args.records * k,
        "start_unix_ns": start_unix_ns,
        "last_unix_ns": last,
        "secs": round2(secs * 1000.0) / 1000.0,
        "records_per_s": round2(ok as f64 / secs),
        "items_per_s": round2((ok * k) as f64 / secs),
        "mb_per_s": round2(bytes as f64 / 1e6 / secs),
        "cpu_s": round2(cpu_s * 1000.0) / 1000.0,
        "peak_mib": round2(peak_mib),
    }))
}

/// The partitions of a topic.
fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), CALL)
        .with_context(|| format!("metadata of topic {topic}"))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        bail!("the broker does not know topic {topic}");
    };
    if let Some(e) = t.error() {
        bail!("topic {topic}: {e:?}");
    }
    let mut p: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    p.sort_unstable();
    if p.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(p)
}

/// Reads how many records a topic holds (the sum of its partitions' high watermarks minus
/// their low watermarks).
pub struct Watermarks {
    consumer: BaseConsumer,
    topic: String,
    partitions: Vec<i32>,
}

impl Watermarks {
    pub fn new(brokers: &str, topic: &str) -> anyhow::Result<Watermarks> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("bench-watermarks-{}", unix_ns()))
            .set("enable.auto.commit", "false")
            .create()
            .context("create the Kafka client")?;
        let partitions = partitions(&consumer, topic)?;
        Ok(Watermarks {
            consumer,
            topic: topic.to_string(),
            partitions,
        })
    }

    /// Records in the topic now; `None` when the broker did not answer in time.
    pub fn records(&self) -> Option<u64> {
        let mut total = 0u64;
        for &p in &self.partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p, Duration::from_secs(2))
                .ok()?;
            total += high.saturating_sub(low).max(0) as u64;
        }
        Some(total)
    }
}

/// Counts the spans of one request and their sequence numbers.
struct Count<'a> {
    items: u64,
    without_seq: u64,
    seqs: &'a mut SeqSet,
}

impl Visitor for Count<'_> {
    fn resource(&mut self, _: Option<u64>) {}

    fn item(&mut self, seq: Option<u64>) {
        self.items += 1;
        match seq {
            Some(s) => self.seqs.insert(s),
            None => self.without_seq += 1,
        }
    }
}

/// Reads the topic with a fresh consumer group from the earliest offset until `records`
/// records (or what the topic held at the start) arrived, and returns the JSON summary.
pub fn consume(args: &ConsumeArgs) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.timeout.max(1.0));
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    apply(&mut config, &args.settings)?;
    let consumer: BaseConsumer = config.create().context("create the Kafka consumer")?;
    let target = if args.records > 0 {
        args.records
    } else {
        let mut total = 0u64;
        for p in partitions(&consumer, &args.topic)? {
            let (low, high) = consumer
                .fetch_watermarks(&args.topic, p, CALL)
                .with_context(|| format!("watermarks of {}/{p}", args.topic))?;
            total += high.saturating_sub(low).max(0) as u64;
        }
        total
    };
    consumer
        .subscribe(&[&args.topic])
        .with_context(|| format!("subscribe to {}", args.topic))?;
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut bad = 0u64;
    let mut items = 0u64;
    let mut without_seq = 0u64;
    let mut seqs = SeqSet::default();
    let mut first_ns = 0u64;
    let mut last_ns = 0u64;
    let mut error = None;
    while records < target {
        if Instant::now() > deadline {
            error = Some(format!(
                "{records} of {target} records within {:.0} s",
                args.timeout
            ));
            break;
        }
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = match polled {
            Ok(m) => m,
            Err(e) => {
                // Transient errors (a partition's end, a rebalance) are reported here too.
                if !matches!(e, KafkaError::PartitionEOF(_)) {
                    error.get_or_insert_with(|| e.to_string());
                }
                continue;
            }
        };
        let now = unix_ns();
        if first_ns == 0 {
            first_ns = now;
        }
        last_ns = now;
        records += 1;
        let payload = msg.payload().unwrap_or(&[]);
        bytes += payload.len() as u64;
        if args.count_items {
            let mut c = Count {
                items: 0,
                without_seq: 0,
                seqs: &mut seqs,
            };
            if wire::scan(Signal::Traces, payload, &mut c).is_err() {
                bad += 1;
            }
            items += c.items;
            without_seq += c.without_seq;
        }
    }
    let secs = (last_ns.saturating_sub(first_ns) as f64 / 1e9).max(1e-3);
    let (cpu_s, peak_mib) = own_usage();
    let mut out = json!({
        "target": target,
        "records": records,
        "bytes": bytes,
        "bad_records": bad,
        "first_unix_ns": first_ns,
        "last_unix_ns": last_ns,
        "secs": round2(secs * 1000.0) / 1000.0,
        "records_per_s": round2(records as f64 / secs),
        "mb_per_s": round2(bytes as f64 / 1e6 / secs),
        "cpu_s": round2(cpu_s * 1000.0) / 1000.0,
        "peak_mib": round2(peak_mib),
        "error": error,
    });
    if args.count_items {
        // The shape of the sink's report, for `check`.
        out["items"] = json!(items);
        out["signals"] = json!({
            "traces": {
                "items": items,
                "items_without_seq": without_seq,
                "unique": seqs.unique,
                "duplicates": seqs.duplicates,
                "seq_out_of_range": seqs.out_of_range,
                "present": seqs.present(),
            }
        });
    }
    Ok(out)
}
