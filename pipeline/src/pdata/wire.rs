//! The protobuf wire format of OTLP export requests, checked and indexed without decoding.
//!
//! A request checked here decodes with prost without error: every field prost would read is
//! checked the way prost reads it (wire types, varints, lengths, UTF-8 in strings, the
//! recursion limit), and unknown fields are skipped as prost skips them. Nothing is
//! allocated per item; the walk also counts the items (spans, data points, log records).

use std::fmt;

use super::Signal;

/// prost's nesting limit for messages.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

/// Why a request is not valid OTLP protobuf, and where. Boxed: the checks return it on
/// their hot paths, where a small `Result` matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(Box<Detail>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    description: &'static str,
    /// The innermost message and field being read when it failed.
    at: Option<(&'static str, &'static str)>,
}

impl WireError {
    #[cold]
    #[inline(never)]
    fn new(description: &'static str) -> Self {
        WireError(Box::new(Detail {
            description,
            at: None,
        }))
    }

    /// A batch that was checked when it arrived no longer decodes: a defect, not bad input.
    pub(crate) fn corrupt() -> Self {
        WireError::new("a checked batch does not decode")
    }

    #[cold]
    fn at(mut self, message: &'static str, field: &'static str) -> Self {
        if self.0.at.is_none() {
            self.0.at = Some((message, field));
        }
        self
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed to decode Protobuf message: ")?;
        if let Some((message, field)) = self.0.at {
            write!(f, "{message}.{field}: ")?;
        }
        f.write_str(self.0.description)
    }
}

impl std::error::Error for WireError {}

/// How a field is checked.
#[derive(Clone, Copy)]
enum Ty {
    Msg(&'static Msg),
    /// string, singular or repeated: UTF-8.
    Str,
    Bytes,
    /// int32/64, uint32/64, sint32, bool, enums.
    Varint,
    /// fixed64, sfixed64, double.
    Fixed64,
    /// fixed32.
    Fixed32,
    /// repeated fixed64 or double: packed or one by one.
    RepFixed64,
    /// repeated uint64: packed or one by one.
    RepVarint,
}

struct Field {
    number: u32,
    name: &'static str,
    ty: Ty,
}

/// One message type of the OTLP schema.
pub(crate) struct Msg {
    name: &'static str,
    fields: &'static [Field],
    /// Field number to its position in `fields`, plus one; 0 for a field prost skips.
    lookup: [u8; MAX_FIELD + 1],
    /// What [`walk`] does for each one-byte key, and the field's position for
    /// [`Act::Msg`]: one table load per field on the hot path.
    acts: [(Act, u8); 128],
    role: Role,
}

/// What [`walk`] does for a one-byte field key (a field from 1 to 15 with its wire type).
/// Each action reads exactly what the general path would read for that key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    /// The general path: groups, wire types that do not match the field, packed repeated
    /// fields, invalid keys.
    General,
    /// A varint, of a known field or of one prost skips.
    Varint,
    /// Eight bytes.
    Fixed64,
    /// Four bytes.
    Fixed32,
    /// Length-delimited bytes, not looked into.
    Len,
    /// Length-delimited UTF-8.
    Str,
    /// A message field: its position in `fields` is beside the action.
    Msg,
}

/// What a message is to item counts and splits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A span, data point or log record: what item counts count.
    Item,
    /// A message that holds items: a resource or scope group, a metric and its data. A split
    /// puts it on one side, or cuts it.
    Group,
    /// Anything else (resource, scope, attributes): a split copies it to both sides.
    Plain,
}

/// The highest field number of the messages checked (Span.flags).
const MAX_FIELD: usize = 16;

/// Builds [`Msg::lookup`]; a field number above `MAX_FIELD` fails the build.
const fn lookup(fields: &[Field]) -> [u8; MAX_FIELD + 1] {
    let mut table = [0u8; MAX_FIELD + 1];
    let mut i = 0;
    while i < fields.len() {
        table[fields[i].number as usize] = (i + 1) as u8;
        i += 1;
    }
    table
}

/// Builds [`Msg::acts`].
const fn acts(fields: &[Field]) -> [(Act, u8); 128] {
    let mut table = [(Act::General, 0u8); 128];
    // Keys 0 to 7 have field number 0: invalid, left to the general path.
    let mut key = 8;
    while key < 128 {
        let (number, wire_type) = ((key >> 3) as u32, (key & 7) as u8);
        let mut at = None;
        let mut i = 0;
        while i < fields.len() {
            if fields[i].number == number {
                at = Some(i);
            }
            i += 1;
        }
        table[key] = match at {
            None => match wire_type {
                VARINT => (Act::Varint, 0),
                I64 => (Act::Fixed64, 0),
                LEN => (Act::Len, 0),
                I32 => (Act::Fixed32, 0),
                _ => (Act::General, 0),
            },
            Some(i) => match (fields[i].ty, wire_type) {
                (Ty::Str, LEN) => (Act::Str, 0),
                (Ty::Bytes, LEN) => (Act::Len, 0),
                (Ty::Varint | Ty::RepVarint, VARINT) => (Act::Varint, 0),
                (Ty::Fixed64 | Ty::RepFixed64, I64) => (Act::Fixed64, 0),
                (Ty::Fixed32, I32) => (Act::Fixed32, 0),
                (Ty::Msg(_), LEN) => (Act::Msg, i as u8),
                _ => (Act::General, 0),
            },
        };
        key += 1;
    }
    table
}

impl Msg {
    #[inline]
    fn field(&self, number: u32) -> Option<&Field> {
        let at = *self.lookup.get(number as usize)?;
        self.fields.get(usize::from(at).checked_sub(1)?)
    }
}

macro_rules! msg {
    ($name:literal, $role:ident, [$(($n:literal, $f:literal, $ty:expr)),* $(,)?]) => {
        Msg {
            name: $name,
            role: Role::$role,
            fields: &[$(Field { number: $n, name: $f, ty: $ty }),*],
            lookup: lookup(&[$(Field { number: $n, name: $f, ty: $ty }),*]),
            acts: acts(&[$(Field { number: $n, name: $f, ty: $ty }),*]),
        }
    };
}

// opentelemetry.proto.common.v1
static ANY_VALUE: Msg = msg!(
    "AnyValue",
    Plain,
    [
        (1, "string_value", Ty::Str),
        (2, "bool_value", Ty::Varint),
        (3, "int_value", Ty::Varint),
        (4, "double_value", Ty::Fixed64),
        (5, "array_value", Ty::Msg(&ARRAY_VALUE)),
        (6, "kvlist_value", Ty::Msg(&KEY_VALUE_LIST)),
        (7, "bytes_value", Ty::Bytes),
        (8, "string_value_strindex", Ty::Varint),
    ]
);
static ARRAY_VALUE: Msg = msg!("ArrayValue", Plain, [(1, "values", Ty::Msg(&ANY_VALUE))]);
static KEY_VALUE_LIST: Msg = msg!("KeyValueList", Plain, [(1, "values", Ty::Msg(&KEY_VALUE))]);
static KEY_VALUE: Msg = msg!(
    "KeyValue",
    Plain,
    [
        (1, "key", Ty::Str),
        (2, "value", Ty::Msg(&ANY_VALUE)),
        (3, "key_strindex", Ty::Varint),
    ]
);
static SCOPE: Msg = msg!(
    "InstrumentationScope",
    Plain,
    [
        (1, "name", Ty::Str),
        (2, "version", Ty::Str),
        (3, "attributes", Ty::Msg(&KEY_VALUE)),
        (4, "dropped_attributes_count", Ty::Varint),
    ]
);
static ENTITY_REF: Msg = msg!(
    "EntityRef",
    Plain,
    [
        (1, "schema_url", Ty::Str),
        (2, "type", Ty::Str),
        (3, "id_keys", Ty::Str),
        (4, "description_keys", Ty::Str),
    ]
);
// opentelemetry.proto.resource.v1
static RESOURCE: Msg = msg!(
    "Resource",
    Plain,
    [
        (1, "attributes", Ty::Msg(&KEY_VALUE)),
        (2, "dropped_attributes_count", Ty::Varint),
        (3, "entity_refs", Ty::Msg(&ENTITY_REF)),
    ]
);

// opentelemetry.proto.trace.v1
static RESOURCE_SPANS: Msg = msg!(
    "ResourceSpans",
    Group,
    [
        (1, "resource", Ty::Msg(&RESOURCE)),
        (2, "scope_spans", Ty::Msg(&SCOPE_SPANS)),
        (3, "schema_url", Ty::Str),
    ]
);
static SCOPE_SPANS: Msg = msg!(
    "ScopeSpans",
    Group,
    [
        (1, "scope", Ty::Msg(&SCOPE)),
        (2, "spans", Ty::Msg(&SPAN)),
        (3, "schema_url", Ty::Str),
    ]
);
static SPAN: Msg = msg!(
    "Span",
    Item,
    [
        (1, "trace_id", Ty::Bytes),
        (2, "span_id", Ty::Bytes),
        (3, "trace_state", Ty::Str),
        (4, "parent_span_id", Ty::Bytes),
        (5, "name", Ty::Str),
        (6, "kind", Ty::Varint),
        (7, "start_time_unix_nano", Ty::Fixed64),
        (8, "end_time_unix_nano", Ty::Fixed64),
        (9, "attributes", Ty::Msg(&KEY_VALUE)),
        (10, "dropped_attributes_count", Ty::Varint),
        (11, "events", Ty::Msg(&SPAN_EVENT)),
        (12, "dropped_events_count", Ty::Varint),
        (13, "links", Ty::Msg(&SPAN_LINK)),
        (14, "dropped_links_count", Ty::Varint),
        (15, "status", Ty::Msg(&SPAN_STATUS)),
        (16, "flags", Ty::Fixed32),
    ]
);
static SPAN_EVENT: Msg = msg!(
    "Event",
    Plain,
    [
        (1, "time_unix_nano", Ty::Fixed64),
        (2, "name", Ty::Str),
        (3, "attributes", Ty::Msg(&KEY_VALUE)),
        (4, "dropped_attributes_count", Ty::Varint),
    ]
);
static SPAN_LINK: Msg = msg!(
    "Link",
    Plain,
    [
        (1, "trace_id", Ty::Bytes),
        (2, "span_id", Ty::Bytes),
        (3, "trace_state", Ty::Str),
        (4, "attributes", Ty::Msg(&KEY_VALUE)),
        (5, "dropped_attributes_count", Ty::Varint),
        (6, "flags", Ty::Fixed32),
    ]
);
static SPAN_STATUS: Msg = msg!(
    "Status",
    Plain,
    [(2, "message", Ty::Str), (3, "code", Ty::Varint),]
);

// opentelemetry.proto.logs.v1
static RESOURCE_LOGS: Msg = msg!(
    "ResourceLogs",
    Group,
    [
        (1, "resource", Ty::Msg(&RESOURCE)),
        (2, "scope_logs", Ty::Msg(&SCOPE_LOGS)),
        (3, "schema_url", Ty::Str),
    ]
);
static SCOPE_LOGS: Msg = msg!(
    "ScopeLogs",
    Group,
    [
        (1, "scope", Ty::Msg(&SCOPE)),
        (2, "log_records", Ty::Msg(&LOG_RECORD)),
        (3, "schema_url", Ty::Str),
    ]
);
static LOG_RECORD: Msg = msg!(
    "LogRecord",
    Item,
    [
        (1, "time_unix_nano", Ty::Fixed64),
        (2, "severity_number", Ty::Varint),
        (3, "severity_text", Ty::Str),
        (5, "body", Ty::Msg(&ANY_VALUE)),
        (6, "attributes", Ty::Msg(&KEY_VALUE)),
        (7, "dropped_attributes_count", Ty::Varint),
        (8, "flags", Ty::Fixed32),
        (9, "trace_id", Ty::Bytes),
        (10, "span_id", Ty::Bytes),
        (11, "observed_time_unix_nano", Ty::Fixed64),
        (12, "event_name", Ty::Str),
    ]
);

// opentelemetry.proto.metrics.v1
static RESOURCE_METRICS: Msg = msg!(
    "ResourceMetrics",
    Group,
    [
        (1, "resource", Ty::Msg(&RESOURCE)),
        (2, "scope_metrics", Ty::Msg(&SCOPE_METRICS)),
        (3, "schema_url", Ty::Str),
    ]
);
static SCOPE_METRICS: Msg = msg!(
    "ScopeMetrics",
    Group,
    [
        (1, "scope", Ty::Msg(&SCOPE)),
        (2, "metrics", Ty::Msg(&METRIC)),
        (3, "schema_url", Ty::Str),
    ]
);
static METRIC: Msg = msg!(
    "Metric",
    Group,
    [
        (1, "name", Ty::Str),
        (2, "description", Ty::Str),
        (3, "unit", Ty::Str),
        (5, "gauge", Ty::Msg(&GAUGE)),
        (7, "sum", Ty::Msg(&SUM)),
        (9, "histogram", Ty::Msg(&HISTOGRAM)),
        (10, "exponential_histogram", Ty::Msg(&EXP_HISTOGRAM)),
        (11, "summary", Ty::Msg(&SUMMARY)),
        (12, "metadata", Ty::Msg(&KEY_VALUE)),
    ]
);
static GAUGE: Msg = msg!("Gauge", Group, [(1, "data_points", Ty::Msg(&NUMBER_POINT))]);
static SUM: Msg = msg!(
    "Sum",
    Group,
    [
        (1, "data_points", Ty::Msg(&NUMBER_POINT)),
        (2, "aggregation_temporality", Ty::Varint),
        (3, "is_monotonic", Ty::Varint),
    ]
);
static HISTOGRAM: Msg = msg!(
    "Histogram",
    Group,
    [
        (1, "data_points", Ty::Msg(&HISTOGRAM_POINT)),
        (2, "aggregation_temporality", Ty::Varint),
    ]
);
static EXP_HISTOGRAM: Msg = msg!(
    "ExponentialHistogram",
    Group,
    [
        (1, "data_points", Ty::Msg(&EXP_HISTOGRAM_POINT)),
        (2, "aggregation_temporality", Ty::Varint),
    ]
);
static SUMMARY: Msg = msg!(
    "Summary",
    Group,
    [(1, "data_points", Ty::Msg(&SUMMARY_POINT))]
);
static NUMBER_POINT: Msg = msg!(
    "NumberDataPoint",
    Item,
    [
        (2, "start_time_unix_nano", Ty::Fixed64),
        (3, "time_unix_nano", Ty::Fixed64),
        (4, "as_double", Ty::Fixed64),
        (5, "exemplars", Ty::Msg(&EXEMPLAR)),
        (6, "as_int", Ty::Fixed64),
        (7, "attributes", Ty::Msg(&KEY_VALUE)),
        (8, "flags", Ty::Varint),
    ]
);
static HISTOGRAM_POINT: Msg = msg!(
    "HistogramDataPoint",
    Item,
    [
        (2, "start_time_unix_nano", Ty::Fixed64),
        (3, "time_unix_nano", Ty::Fixed64),
        (4, "count", Ty::Fixed64),
        (5, "sum", Ty::Fixed64),
        (6, "bucket_counts", Ty::RepFixed64),
        (7, "explicit_bounds", Ty::RepFixed64),
        (8, "exemplars", Ty::Msg(&EXEMPLAR)),
        (9, "attributes", Ty::Msg(&KEY_VALUE)),
        (10, "flags", Ty::Varint),
        (11, "min", Ty::Fixed64),
        (12, "max", Ty::Fixed64),
    ]
);
static EXP_HISTOGRAM_POINT: Msg = msg!(
    "ExponentialHistogramDataPoint",
    Item,
    [
        (1, "attributes", Ty::Msg(&KEY_VALUE)),
        (2, "start_time_unix_nano", Ty::Fixed64),
        (3, "time_unix_nano", Ty::Fixed64),
        (4, "count", Ty::Fixed64),
        (5, "sum", Ty::Fixed64),
        (6, "scale", Ty::Varint),
        (7, "zero_count", Ty::Fixed64),
        (8, "positive", Ty::Msg(&EXP_BUCKETS)),
        (9, "negative", Ty::Msg(&EXP_BUCKETS)),
        (10, "flags", Ty::Varint),
        (11, "exemplars", Ty::Msg(&EXEMPLAR)),
        (12, "min", Ty::Fixed64),
        (13, "max", Ty::Fixed64),
        (14, "zero_threshold", Ty::Fixed64),
    ]
);
static EXP_BUCKETS: Msg = msg!(
    "Buckets",
    Plain,
    [
        (1, "offset", Ty::Varint),
        (2, "bucket_counts", Ty::RepVarint),
    ]
);
static SUMMARY_POINT: Msg = msg!(
    "SummaryDataPoint",
    Item,
    [
        (2, "start_time_unix_nano", Ty::Fixed64),
        (3, "time_unix_nano", Ty::Fixed64),
        (4, "count", Ty::Fixed64),
        (5, "sum", Ty::Fixed64),
        (6, "quantile_values", Ty::Msg(&QUANTILE)),
        (7, "attributes", Ty::Msg(&KEY_VALUE)),
        (8, "flags", Ty::Varint),
    ]
);
static QUANTILE: Msg = msg!(
    "ValueAtQuantile",
    Plain,
    [(1, "quantile", Ty::Fixed64), (2, "value", Ty::Fixed64),]
);
static EXEMPLAR: Msg = msg!(
    "Exemplar",
    Plain,
    [
        (2, "time_unix_nano", Ty::Fixed64),
        (3, "as_double", Ty::Fixed64),
        (4, "span_id", Ty::Bytes),
        (5, "trace_id", Ty::Bytes),
        (6, "as_int", Ty::Fixed64),
        (7, "filtered_attributes", Ty::Msg(&KEY_VALUE)),
    ]
);

/// The message type of the top-level entries (field 1) of a signal's export request.
pub(crate) fn resource_message(signal: Signal) -> &'static Msg {
    match signal {
        Signal::Traces => &RESOURCE_SPANS,
        Signal::Metrics => &RESOURCE_METRICS,
        Signal::Logs => &RESOURCE_LOGS,
    }
}

fn request_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
    }
}

/// A cursor over protobuf bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let (value, end) = varint_at(self.buf, self.pos)?;
        self.pos = end;
        Ok(value)
    }

    /// A field key: its number and wire type.
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<(u32, u8), WireError> {
        // The common case: one byte, a field from 1 to 15 with a valid wire type.
        if let Some(&b) = self.buf.get(self.pos) {
            if (8..0x80).contains(&b) && (b & 7) <= I32 {
                self.pos += 1;
                return Ok((u32::from(b >> 3), b & 7));
            }
        }
        self.key_slow()
    }

    #[inline(never)]
    fn key_slow(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError::new("invalid key value"))?;
        let wire_type = (key & 7) as u8;
        if wire_type > I32 {
            return Err(WireError::new("invalid wire type value"));
        }
        let number = key >> 3;
        if number == 0 {
            return Err(WireError::new("invalid tag value: 0"));
        }
        Ok((number, wire_type))
    }

    #[inline(always)]
    fn advance(&mut self, n: usize) -> Result<(), WireError> {
        self.pos = skip_at(self.buf, self.pos, n)?;
        Ok(())
    }

    /// A length-delimited field's bytes.
    #[inline(always)]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let (bytes, end) = len_at(self.buf, self.pos)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Skips a field prost does not know, as prost does (groups included).
    fn skip(&mut self, number: u32, wire_type: u8, depth: u32) -> Result<(), WireError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            I64 => self.advance(8),
            I32 => self.advance(4),
            LEN => self.bytes().map(drop),
            SGROUP => {
                if depth == 0 {
                    return Err(WireError::new("recursion limit reached"));
                }
                loop {
                    let (n, wt) = self.key()?;
                    if wt == EGROUP {
                        if n != number {
                            return Err(WireError::new("unexpected end group tag"));
                        }
                        return Ok(());
                    }
                    self.skip(n, wt, depth - 1)?;
                }
            }
            _ => Err(WireError::new("unexpected end group tag")),
        }
    }
}

/// A varint at `pos`: its value and the position after it.
#[inline(always)]
fn varint_at(buf: &[u8], pos: usize) -> Result<(u64, usize), WireError> {
    // One or two bytes: lengths of attributes, events and spans.
    match (buf.get(pos), buf.get(pos + 1)) {
        (Some(&b), _) if b < 0x80 => Ok((u64::from(b), pos + 1)),
        (Some(&b0), Some(&b1)) if b1 < 0x80 => {
            Ok((u64::from(b0 & 0x7f) | u64::from(b1) << 7, pos + 2))
        }
        _ => varint_at_slow(buf, pos),
    }
}

#[inline(never)]
fn varint_at_slow(buf: &[u8], mut pos: usize) -> Result<(u64, usize), WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&b) = buf.get(pos) else {
            return Err(WireError::new("buffer underflow"));
        };
        pos += 1;
        if i == 9 && b > 1 {
            return Err(WireError::new("invalid varint"));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((value, pos));
        }
    }
    Err(WireError::new("invalid varint"))
}

/// A length-delimited field's bytes at `pos` (after the key), and the position after them.
#[inline(always)]
fn len_at(buf: &[u8], pos: usize) -> Result<(&[u8], usize), WireError> {
    let (len, start) = varint_at(buf, pos)?;
    match usize::try_from(len) {
        Ok(len) if len <= buf.len() - start => Ok((&buf[start..start + len], start + len)),
        _ => Err(WireError::new("buffer underflow")),
    }
}

/// `pos + n` when that is within `buf`.
#[inline(always)]
fn skip_at(buf: &[u8], pos: usize, n: usize) -> Result<usize, WireError> {
    if buf.len() - pos < n {
        return Err(WireError::new("buffer underflow"));
    }
    Ok(pos + n)
}

/// Whether every byte is below 0x80. Attribute keys and values are mostly short, where
/// `<[u8]>::is_ascii` goes byte by byte: this reads at most a few words, overlapping.
#[inline(always)]
fn ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |at: usize| {
        b.get(at..at + 8).map_or(0, |w| {
            u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
        })
    };
    let n = b.len();
    if n >= 8 {
        let mut acc = word(n - 8);
        let mut at = 0;
        while at + 8 < n {
            acc |= word(at);
            at += 8;
        }
        acc & HIGH == 0
    } else if n >= 4 {
        let half = |at: usize| {
            b.get(at..at + 4)
                .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        };
        (half(0) | half(n - 4)) & 0x8080_8080 == 0
    } else {
        b.iter().fold(0, |acc, &c| acc | c) < 0x80
    }
}

/// A string field's bytes must be UTF-8.
#[inline(always)]
fn utf8(b: &[u8]) -> Result<(), WireError> {
    // Nearly every string is ASCII: a branch-light test first.
    if ascii(b) || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(WireError::new(
            "invalid string value: data is not UTF-8 encoded",
        ))
    }
}

/// A `KeyValue` whose value is a string or a scalar, checked in one pass; any other shape
/// (arrays, maps, bytes, unknown fields) goes through [`walk`]. Inlined: a span has a dozen.
#[inline(always)]
fn key_value(buf: &[u8], depth: u32) -> Result<(), WireError> {
    if depth >= 2 && simple_key_value(buf) {
        return Ok(());
    }
    walk(buf, &KEY_VALUE, depth).map(drop)
}

/// Whether `buf` is a valid `KeyValue` with a string key and a string or scalar value.
#[inline(always)]
fn simple_key_value(buf: &[u8]) -> bool {
    // The usual encoding, key then value, in straight-line code; anything else in the loop.
    let mut pos = 0;
    if buf.first() == Some(&0x0a) {
        match len_at(buf, 1) {
            Ok((s, end)) if utf8(s).is_ok() => pos = end,
            _ => return false,
        }
    }
    if buf.get(pos) == Some(&0x12) {
        match len_at(buf, pos + 1) {
            Ok((v, end)) if simple_any_value(v) => pos = end,
            _ => return false,
        }
    }
    while let Some(&key) = buf.get(pos) {
        pos = match key {
            // key
            0x0a => match len_at(buf, pos + 1) {
                Ok((s, end)) if utf8(s).is_ok() => end,
                _ => return false,
            },
            // value
            0x12 => match len_at(buf, pos + 1) {
                Ok((v, end)) if simple_any_value(v) => end,
                _ => return false,
            },
            // key_strindex
            0x18 => match varint_at(buf, pos + 1) {
                Ok((_, end)) => end,
                Err(_) => return false,
            },
            _ => return false,
        };
    }
    true
}

/// Whether `buf` is a valid `AnyValue` holding a string or a scalar.
#[inline(always)]
fn simple_any_value(buf: &[u8]) -> bool {
    // A string value alone: the usual case.
    if buf.first() == Some(&0x0a) {
        if let Ok((s, end)) = len_at(buf, 1) {
            if end == buf.len() {
                return utf8(s).is_ok();
            }
        }
    }
    let mut pos = 0;
    while let Some(&key) = buf.get(pos) {
        pos = match key {
            // string_value
            0x0a => match len_at(buf, pos + 1) {
                Ok((s, end)) if utf8(s).is_ok() => end,
                _ => return false,
            },
            // bool_value, int_value, string_value_strindex
            0x10 | 0x18 | 0x40 => match varint_at(buf, pos + 1) {
                Ok((_, end)) => end,
                Err(_) => return false,
            },
            // double_value
            0x21 => match skip_at(buf, pos + 1, 8) {
                Ok(end) => end,
                Err(_) => return false,
            },
            _ => return false,
        };
    }
    true
}

/// Checks one message and counts the items in it.
fn walk(buf: &[u8], msg: &'static Msg, depth: u32) -> Result<usize, WireError> {
    if depth == 0 {
        return Err(WireError::new("recursion limit reached"));
    }
    let mut pos = 0;
    let mut items = 0usize;
    while let Some(&key) = buf.get(pos) {
        let (act, slot) = msg
            .acts
            .get(usize::from(key))
            .copied()
            .unwrap_or((Act::General, 0));
        let next = match act {
            Act::Varint => varint_at(buf, pos + 1).map(|(_, end)| end),
            Act::Fixed64 => skip_at(buf, pos + 1, 8),
            Act::Fixed32 => skip_at(buf, pos + 1, 4),
            Act::Len => len_at(buf, pos + 1).map(|(_, end)| end),
            Act::Str => len_at(buf, pos + 1).and_then(|(s, end)| utf8(s).map(|()| end)),
            Act::Msg => len_at(buf, pos + 1).and_then(|(body, end)| {
                match msg.fields.get(usize::from(slot)).map(|f| f.ty) {
                    // Attributes are most of what a span holds: their check skips the
                    // general walk.
                    Some(Ty::Msg(inner)) if std::ptr::eq(inner, &KEY_VALUE) => {
                        key_value(body, depth - 1)?
                    }
                    Some(Ty::Msg(inner)) => items += walk(body, inner, depth - 1)?,
                    _ => unreachable_act()?,
                }
                Ok(end)
            }),
            Act::General => {
                pos = walk_field(buf, pos, msg, depth, &mut items)?;
                continue;
            }
        };
        pos = next.map_err(|e| locate(e, msg, key))?;
    }
    Ok(items + usize::from(msg.role == Role::Item))
}

/// Never happens: [`acts`] marks only message fields [`Act::Msg`].
#[cold]
fn unreachable_act() -> Result<(), WireError> {
    Err(WireError::new("invalid wire type"))
}

/// Names the field of a one-byte `key` in an error, when `msg` has that field.
#[cold]
#[inline(never)]
fn locate(e: WireError, msg: &'static Msg, key: u8) -> WireError {
    match msg.field(u32::from(key >> 3)) {
        Some(field) => e.at(msg.name, field.name),
        None => e,
    }
}

/// Checks the field at `pos` the general way (any key, any wire type) and returns the
/// position after it.
#[inline(never)]
fn walk_field(
    buf: &[u8],
    pos: usize,
    msg: &'static Msg,
    depth: u32,
    items: &mut usize,
) -> Result<usize, WireError> {
    let mut r = Reader { buf, pos };
    let (number, wire_type) = r.key()?;
    let Some(field) = msg.field(number) else {
        r.skip(number, wire_type, depth)?;
        return Ok(r.pos);
    };
    let checked = match (field.ty, wire_type) {
        (Ty::Msg(inner), LEN) if std::ptr::eq(inner, &KEY_VALUE) => {
            r.bytes().and_then(|b| key_value(b, depth - 1))
        }
        (Ty::Msg(inner), LEN) => r
            .bytes()
            .and_then(|b| walk(b, inner, depth - 1))
            .map(|n| *items += n),
        (Ty::Str, LEN) => r.bytes().and_then(utf8),
        (Ty::Bytes, LEN) => r.bytes().map(drop),
        (Ty::Varint | Ty::RepVarint, VARINT) => r.varint().map(drop),
        (Ty::Fixed64 | Ty::RepFixed64, I64) => r.advance(8),
        (Ty::Fixed32, I32) => r.advance(4),
        (Ty::RepFixed64, LEN) => r.bytes().and_then(|b| {
            if b.len() % 8 == 0 {
                Ok(())
            } else {
                Err(WireError::new("invalid packed length"))
            }
        }),
        (Ty::RepVarint, LEN) => r.bytes().and_then(|b| {
            let mut packed = Reader::new(b);
            while !packed.is_done() {
                packed.varint()?;
            }
            Ok(())
        }),
        _ => Err(WireError::new("invalid wire type")),
    };
    checked.map_err(|e| e.at(msg.name, field.name))?;
    Ok(r.pos)
}

/// Counts the items in a checked message, reading only the fields that hold them.
fn count_items(buf: &[u8], msg: &'static Msg) -> Result<usize, WireError> {
    if msg.role == Role::Item {
        return Ok(1);
    }
    let mut r = Reader::new(buf);
    let mut items = 0;
    while !r.is_done() {
        let (number, wire_type) = r.key()?;
        match msg.field(number).map(|f| f.ty) {
            Some(Ty::Msg(inner)) if wire_type == LEN && inner.role != Role::Plain => {
                items += count_items(r.bytes()?, inner)?;
            }
            _ => r.skip(number, wire_type, RECURSION_LIMIT)?,
        }
    }
    Ok(items)
}

/// Appends a length-delimited field: `key` (the original key bytes) and `body`.
fn write_field(key: &[u8], body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(key);
    let mut len = body.len() as u64;
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
}

/// Splits a checked message holding items after its first `n` items, in its encoding: fields
/// that hold no items are copied to both halves, the items and their groups go to one side,
/// and the one group that straddles the cut is split the same way. Returns the two halves'
/// encodings (without the message's own key and length).
fn split_message(
    buf: &[u8],
    msg: &'static Msg,
    mut n: usize,
    head: &mut Vec<u8>,
    tail: &mut Vec<u8>,
) -> Result<(), WireError> {
    let mut r = Reader::new(buf);
    let mut cut = false;
    while !r.is_done() {
        let start = r.position();
        let (number, wire_type) = r.key()?;
        let key_end = r.position();
        let inner = match msg.field(number).map(|f| f.ty) {
            Some(Ty::Msg(inner)) if wire_type == LEN && inner.role != Role::Plain => inner,
            _ => {
                // Holds no items: both halves keep it.
                r.skip(number, wire_type, RECURSION_LIMIT)?;
                let field = &buf[start..r.position()];
                head.extend_from_slice(field);
                tail.extend_from_slice(field);
                continue;
            }
        };
        let body = r.bytes()?;
        let field = &buf[start..r.position()];
        let items = count_items(body, inner)?;
        // Whole groups go first while they fit (empty ones too, as the decoded split does);
        // the first that does not is cut, or goes behind the cut when nothing is left.
        if !cut && items <= n {
            head.extend_from_slice(field);
            n -= items;
        } else if !cut && n > 0 {
            let (mut h, mut t) = (Vec::new(), Vec::new());
            split_message(body, inner, n, &mut h, &mut t)?;
            write_field(&buf[start..key_end], &h, head);
            write_field(&buf[start..key_end], &t, tail);
            cut = true;
        } else {
            tail.extend_from_slice(field);
            cut = true;
        }
    }
    Ok(())
}

/// Splits one top-level entry made by [`index`] after `n` of its items, without decoding:
/// the two entries that result.
pub(crate) fn split_entry(
    signal: Signal,
    entry: &[u8],
    n: usize,
) -> Result<(Vec<u8>, Vec<u8>), WireError> {
    let body = entry_body(entry)?;
    let (mut h, mut t) = (Vec::new(), Vec::new());
    split_message(body, resource_message(signal), n, &mut h, &mut t)?;
    let (mut head, mut tail) = (
        Vec::with_capacity(h.len() + 6),
        Vec::with_capacity(t.len() + 6),
    );
    write_entry(&h, &mut head);
    write_entry(&t, &mut tail);
    Ok((head, tail))
}

/// One top-level entry of a request: the byte range of the whole field (key, length and a
/// Resource{Spans,Metrics,Logs} message) and the items in it.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub start: usize,
    pub end: usize,
    pub items: usize,
}

/// Checks a whole export request of `signal` and lists its top-level entries.
pub(crate) fn index(signal: Signal, buf: &[u8]) -> Result<Vec<RawEntry>, WireError> {
    let resource = resource_message(signal);
    let field = match signal {
        Signal::Traces => "resource_spans",
        Signal::Metrics => "resource_metrics",
        Signal::Logs => "resource_logs",
    };
    let name = request_name(signal);
    let mut r = Reader::new(buf);
    let mut entries = Vec::new();
    while !r.is_done() {
        let start = r.position();
        let (number, wire_type) = r.key().map_err(|e| e.at(name, field))?;
        if number != 1 {
            r.skip(number, wire_type, RECURSION_LIMIT)?;
            continue;
        }
        if wire_type != LEN {
            return Err(WireError::new("invalid wire type").at(name, field));
        }
        let body = r.bytes().map_err(|e| e.at(name, field))?;
        let items = walk(body, resource, RECURSION_LIMIT - 1)?;
        entries.push(RawEntry {
            start,
            end: r.position(),
            items,
        });
    }
    Ok(entries)
}

/// The message inside an entry made by [`index`] (its key and length skipped).
pub(crate) fn entry_body(entry: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(entry);
    r.key()?;
    r.bytes()
}

/// Writes a top-level entry (field 1, length-delimited) around `body`.
fn write_entry(body: &[u8], out: &mut Vec<u8>) {
    write_field(&[0x0a], body, out);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pdata::common::{any_value, AnyValue, KeyValue};
    use crate::pdata::metrics::{self, metric::Data};
    use crate::pdata::{logs, trace, ExportLogsServiceRequest, ExportMetricsServiceRequest};
    use crate::pdata::{ExportTraceServiceRequest, Payload};
    use prost::Message;

    fn span(name: &str) -> trace::Span {
        trace::Span {
            name: name.into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("v".into())),
                }),
                key_strindex: 0,
            }],
            events: vec![trace::span::Event {
                name: "e".into(),
                ..Default::default()
            }],
            status: Some(trace::Status {
                message: "m".into(),
                code: 2,
            }),
            ..Default::default()
        }
    }

    fn traces() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                trace::ResourceSpans {
                    scope_spans: vec![trace::ScopeSpans {
                        spans: vec![span("a"), span("b")],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                trace::ResourceSpans {
                    scope_spans: vec![
                        trace::ScopeSpans {
                            spans: vec![span("c")],
                            ..Default::default()
                        },
                        trace::ScopeSpans::default(),
                    ],
                    schema_url: "s".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn indexes_and_counts_every_signal() {
        let bytes = traces().encode_to_vec();
        let entries = index(Signal::Traces, &bytes).unwrap();
        assert_eq!(entries.iter().map(|e| e.items).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(entries[0].start, 0);
        assert_eq!(entries[1].end, bytes.len());

        let point = metrics::NumberDataPoint::default();
        let hist = metrics::HistogramDataPoint {
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![1.0, 2.0],
            ..Default::default()
        };
        let m = ExportMetricsServiceRequest {
            resource_metrics: vec![metrics::ResourceMetrics {
                scope_metrics: vec![metrics::ScopeMetrics {
                    metrics: vec![
                        metrics::Metric {
                            name: "g".into(),
                            data: Some(Data::Gauge(metrics::Gauge {
                                data_points: vec![point.clone(); 3],
                            })),
                            ..Default::default()
                        },
                        metrics::Metric {
                            name: "h".into(),
                            data: Some(Data::Histogram(metrics::Histogram {
                                data_points: vec![hist; 2],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = m.encode_to_vec();
        let entries = index(Signal::Metrics, &bytes).unwrap();
        assert_eq!(entries[0].items, 5);
        assert_eq!(
            Payload::from(m).item_count(),
            entries.iter().map(|e| e.items).sum::<usize>()
        );

        let l = ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord::default(); 4],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let entries = index(Signal::Logs, &l.encode_to_vec()).unwrap();
        assert_eq!(entries[0].items, 4);
    }

    #[test]
    fn ascii_test_agrees_with_std_at_every_length_and_position() {
        for n in 0..40 {
            let plain = vec![b'a'; n];
            assert!(ascii(&plain), "length {n}");
            for at in 0..n {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut b = plain.clone();
                    b[at] = high;
                    assert_eq!(ascii(&b), b.is_ascii(), "length {n}, byte {at}");
                    assert!(!ascii(&b));
                }
            }
        }
    }

    #[test]
    fn empty_request_has_no_entries() {
        assert!(index(Signal::Traces, &[]).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_prost_refuses() {
        let good = traces().encode_to_vec();
        // Truncated anywhere: prost and the index agree.
        for cut in 1..good.len() {
            let bytes = &good[..cut];
            let ours = index(Signal::Traces, bytes).is_ok();
            let prost = ExportTraceServiceRequest::decode(bytes).is_ok();
            assert_eq!(ours, prost, "cut at {cut}");
        }
        // Invalid UTF-8 in a span name.
        let mut bad = traces();
        bad.resource_spans[0].scope_spans[0].spans[0].name = "\u{7f}x".into();
        let mut bytes = bad.encode_to_vec();
        let at = bytes.iter().position(|&b| b == 0x7f).unwrap();
        bytes[at] = 0xff;
        assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
        let err = index(Signal::Traces, &bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to decode Protobuf message: Span.name: invalid string value: data is not UTF-8 encoded"
        );
        // A wrong wire type for a known field.
        assert!(index(Signal::Traces, &[0x08, 0x01]).is_err());
        assert!(ExportTraceServiceRequest::decode(&[0x08u8, 0x01][..]).is_err());
        // Garbage.
        assert!(index(Signal::Traces, &[0x0a, 0x64]).is_err());
        assert!(index(Signal::Logs, &[0xff; 12]).is_err());
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_as_prost_does() {
        // Field 9 (unknown) as a varint, then a group 10 holding a varint, then a real entry.
        let mut bytes = vec![0x48, 0x05, 0x53, 0x08, 0x01, 0x54];
        bytes.extend(traces().encode_to_vec());
        assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_ok());
        let entries = index(Signal::Traces, &bytes).unwrap();
        assert_eq!(entries.len(), 2);
        // An end-group without its start.
        assert!(index(Signal::Traces, &[0x54]).is_err());
        assert!(ExportTraceServiceRequest::decode(&[0x54u8][..]).is_err());
    }

    #[test]
    fn deep_nesting_stops_at_the_recursion_limit() {
        let mut value = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..120 {
            value = AnyValue {
                value: Some(any_value::Value::ArrayValue(
                    crate::pdata::common::ArrayValue {
                        values: vec![value],
                    },
                )),
            };
        }
        let mut request = traces();
        request.resource_spans[0].scope_spans[0].spans[0].attributes[0].value = Some(value);
        let bytes = request.encode_to_vec();
        assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
        assert!(index(Signal::Traces, &bytes).is_err());
    }

    #[test]
    fn packed_and_unpacked_repeated_scalars() {
        // HistogramDataPoint.bucket_counts (6) unpacked: two fixed64 values.
        let mut point = vec![0x31];
        point.extend([1u8, 0, 0, 0, 0, 0, 0, 0]);
        point.push(0x31);
        point.extend([2u8, 0, 0, 0, 0, 0, 0, 0]);
        let decoded = metrics::HistogramDataPoint::decode(&point[..]).unwrap();
        assert_eq!(decoded.bucket_counts, [1, 2]);
        assert_eq!(walk(&point, &HISTOGRAM_POINT, 10).unwrap(), 1);
        // Packed, with a length that is not a multiple of 8.
        let bad = [0x32, 0x03, 1, 2, 3];
        assert!(metrics::HistogramDataPoint::decode(&bad[..]).is_err());
        assert!(walk(&bad, &HISTOGRAM_POINT, 10).is_err());
    }

    /// A request of every signal that uses every kind of field the schema checks.
    fn rich_requests() -> Vec<(Signal, Vec<u8>)> {
        use crate::pdata::common::{ArrayValue, InstrumentationScope, KeyValueList};
        use crate::pdata::resource::Resource;
        let string = |key: &str, value: &str| KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            key_strindex: 0,
        };
        let attrs = vec![
            string("s", "é"),
            // The one-pass attribute check: a string of 4 to 7 bytes, one of 8 or more with
            // a non-ASCII byte in its middle, one whose length takes two bytes, scalars.
            string("k.four", "abcé"),
            string("k.eleven.é", "abcdefgh\u{e9}ij"),
            string("k.long", &"x".repeat(200)),
            KeyValue {
                key: "i".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(300)),
                }),
                key_strindex: 0,
            },
            KeyValue {
                key: "b".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(true)),
                }),
                key_strindex: 0,
            },
            KeyValue {
                key: "a".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(any_value::Value::DoubleValue(1.5)),
                            },
                            AnyValue {
                                value: Some(any_value::Value::KvlistValue(KeyValueList {
                                    values: vec![KeyValue {
                                        key: "b".into(),
                                        value: Some(AnyValue {
                                            value: Some(any_value::Value::BytesValue(vec![0xff])),
                                        }),
                                        key_strindex: 0,
                                    }],
                                })),
                            },
                        ],
                    })),
                }),
                key_strindex: 0,
            },
        ];
        let resource = Some(Resource {
            attributes: attrs.clone(),
            dropped_attributes_count: 1,
            entity_refs: vec![],
        });
        let scope = Some(InstrumentationScope {
            name: "n".into(),
            version: "v".into(),
            attributes: attrs.clone(),
            dropped_attributes_count: 2,
        });
        let mut s = span("x");
        s.attributes = attrs.clone();
        s.links = vec![trace::span::Link {
            trace_id: vec![3; 16],
            attributes: attrs.clone(),
            flags: 1,
            ..Default::default()
        }];
        s.flags = 257;
        let t = ExportTraceServiceRequest {
            resource_spans: vec![trace::ResourceSpans {
                resource: resource.clone(),
                scope_spans: vec![trace::ScopeSpans {
                    scope: scope.clone(),
                    spans: vec![s.clone(), s],
                    schema_url: "u".into(),
                }],
                schema_url: "u".into(),
            }],
        };
        let exemplar = metrics::Exemplar {
            filtered_attributes: attrs.clone(),
            time_unix_nano: 5,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(metrics::exemplar::Value::AsInt(3)),
        };
        let m = ExportMetricsServiceRequest {
            resource_metrics: vec![metrics::ResourceMetrics {
                resource: resource.clone(),
                scope_metrics: vec![metrics::ScopeMetrics {
                    scope: scope.clone(),
                    metrics: vec![
                        metrics::Metric {
                            name: "h".into(),
                            unit: "s".into(),
                            data: Some(Data::Histogram(metrics::Histogram {
                                data_points: vec![metrics::HistogramDataPoint {
                                    attributes: attrs.clone(),
                                    count: 3,
                                    sum: Some(2.0),
                                    bucket_counts: vec![1, 2],
                                    explicit_bounds: vec![1.0],
                                    exemplars: vec![exemplar.clone()],
                                    min: Some(0.5),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                        metrics::Metric {
                            name: "e".into(),
                            data: Some(Data::ExponentialHistogram(metrics::ExponentialHistogram {
                                data_points: vec![metrics::ExponentialHistogramDataPoint {
                                    scale: -3,
                                    positive: Some(
                                        metrics::exponential_histogram_data_point::Buckets {
                                            offset: -2,
                                            bucket_counts: vec![1, 300, 70000],
                                        },
                                    ),
                                    exemplars: vec![exemplar],
                                    ..Default::default()
                                }],
                                aggregation_temporality: 1,
                            })),
                            ..Default::default()
                        },
                        metrics::Metric {
                            name: "q".into(),
                            data: Some(Data::Summary(metrics::Summary {
                                data_points: vec![metrics::SummaryDataPoint {
                                    quantile_values: vec![
                                        metrics::summary_data_point::ValueAtQuantile {
                                            quantile: 0.5,
                                            value: 1.0,
                                        },
                                    ],
                                    ..Default::default()
                                }],
                            })),
                            metadata: attrs.clone(),
                            ..Default::default()
                        },
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let l = ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                resource,
                scope_logs: vec![logs::ScopeLogs {
                    scope,
                    log_records: vec![logs::LogRecord {
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("body".into())),
                        }),
                        attributes: attrs,
                        event_name: "ev".into(),
                        trace_id: vec![1; 16],
                        flags: 1,
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        vec![
            (Signal::Traces, t.encode_to_vec()),
            (Signal::Metrics, m.encode_to_vec()),
            (Signal::Logs, l.encode_to_vec()),
        ]
    }

    fn prost_accepts(signal: Signal, bytes: &[u8]) -> bool {
        match signal {
            Signal::Traces => ExportTraceServiceRequest::decode(bytes).is_ok(),
            Signal::Metrics => ExportMetricsServiceRequest::decode(bytes).is_ok(),
            Signal::Logs => ExportLogsServiceRequest::decode(bytes).is_ok(),
        }
    }

    /// Differential check against prost: random damage to valid requests is refused by the
    /// index exactly when prost refuses it, and what both accept counts the same items.
    #[test]
    fn agrees_with_prost_on_damaged_requests() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (signal, good) in rich_requests() {
            assert_eq!(index(signal, &good).unwrap().len(), 1);
            let mut accepted = 0;
            for _ in 0..20_000 {
                let mut bytes = good.clone();
                for _ in 0..=(next() % 3) {
                    let at = (next() as usize) % bytes.len().max(1);
                    match next() % 4 {
                        0 => bytes[at] ^= 1 << (next() % 8),
                        1 => bytes[at] = next() as u8,
                        2 => bytes.truncate(at),
                        _ => bytes.insert(at, next() as u8),
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
                let ours = index(signal, &bytes);
                assert_eq!(
                    ours.is_ok(),
                    prost_accepts(signal, &bytes),
                    "{signal}: {bytes:02x?}: {ours:?}"
                );
                if let Ok(entries) = ours {
                    accepted += 1;
                    let mut payload = super::super::Encoded::parse(signal, bytes.clone().into())
                        .unwrap()
                        .decode()
                        .unwrap();
                    assert!(payload.decode_in_place().is_ok());
                    let items: usize = entries.iter().map(|e| e.items).sum();
                    // A oneof set twice is kept once by prost but counted twice here.
                    assert!(items >= payload.item_count(), "{signal}: {bytes:02x?}");
                }
            }
            assert!(
                accepted > 100,
                "{signal}: only {accepted} damaged requests decoded"
            );
        }
    }

    #[test]
    fn entries_round_trip() {
        let body = vec![7u8; 300];
        let mut out = Vec::new();
        write_entry(&body, &mut out);
        assert_eq!(entry_body(&out).unwrap(), &body[..]);
    }
}
