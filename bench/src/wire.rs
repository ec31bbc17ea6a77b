//! A small reader of the protobuf wire format, enough for the sink to count the items of an
//! OTLP export request and read the two attributes the load generator stamps, without
//! decoding (or allocating) the rest: `bench.seq` on every span, data point and log record,
//! and `bench.sent` on every resource.

use crate::payload::{Signal, SENT_KEY, SEQ_KEY};

#[derive(Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed protobuf: {}", self.0)
    }
}

impl std::error::Error for WireError {}

type Result<T> = std::result::Result<T, WireError>;

/// One field of a message: its number and its value.
pub enum Value<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        if let Some(&byte) = self.buf.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(WireError("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError("truncated field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next field, or None at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError("field number"))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError("length"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            _ => return Err(WireError("unsupported wire type")),
        };
        Ok(Some((number, value)))
    }
}

/// Calls `f` with the bytes of every length-delimited field `number` of `msg`.
fn each<'a>(msg: &'a [u8], number: u32, mut f: impl FnMut(&'a [u8]) -> Result<()>) -> Result<()> {
    let mut fields = Fields::new(msg);
    while let Some((n, v)) = fields.next_field()? {
        if n == number {
            match v {
                Value::Bytes(b) => f(b)?,
                _ => return Err(WireError("expected a length-delimited field")),
            }
        }
    }
    Ok(())
}

/// The value of a string attribute `key` among the KeyValue fields `number` of `msg`.
fn string_attribute<'a>(msg: &'a [u8], number: u32, key: &str) -> Result<Option<&'a [u8]>> {
    let mut found = None;
    let wanted = key.as_bytes();
    each(msg, number, |kv| {
        // Encoders write the key first: most attributes are told apart by its first bytes.
        if let [0x0a, len, rest @ ..] = kv {
            if *len < 0x80 && (usize::from(*len) != wanted.len() || !rest.starts_with(wanted)) {
                return Ok(());
            }
        }
        let mut k: &[u8] = &[];
        let mut value: &[u8] = &[];
        let mut fields = Fields::new(kv);
        while let Some((n, v)) = fields.next_field()? {
            match (n, v) {
                (1, Value::Bytes(b)) => k = b,
                (2, Value::Bytes(b)) => value = b,
                _ => {}
            }
        }
        if k == key.as_bytes() {
            let mut fields = Fields::new(value);
            while let Some((n, v)) = fields.next_field()? {
                if let (1, Value::Bytes(s)) = (n, v) {
                    found = Some(s);
                }
            }
        }
        Ok(())
    })?;
    Ok(found)
}

fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// What a visitor is told about one request.
pub trait Visitor {
    /// A resource starts; `sent_unix_nano` is its `bench.sent` attribute when present.
    fn resource(&mut self, sent_unix_nano: Option<u64>);
    /// One item (span, data point, log record) of the current resource.
    fn item(&mut self, seq: Option<u64>);
}

/// Walks an export request of `signal`, telling `v` about every resource and item.
pub fn scan(signal: Signal, request: &[u8], v: &mut impl Visitor) -> Result<()> {
    // Every OTLP export request: field 1 = ResourceX { 1: Resource, 2: ScopeX { 2: items } }.
    each(request, 1, |resource_x| {
        let mut sent = None;
        each(resource_x, 1, |resource| {
            sent = string_attribute(resource, 1, SENT_KEY)?.and_then(parse_digits);
            Ok(())
        })?;
        v.resource(sent);
        each(resource_x, 2, |scope_x| {
            each(scope_x, 2, |item| match signal {
                Signal::Traces => item_seq(item, 9, v),
                Signal::Logs => item_seq(item, 6, v),
                Signal::Metrics => metric_points(item, v),
            })
        })
    })
}

fn item_seq(item: &[u8], attributes_field: u32, v: &mut impl Visitor) -> Result<()> {
    let seq = string_attribute(item, attributes_field, SEQ_KEY)?.and_then(parse_digits);
    v.item(seq);
    Ok(())
}

fn metric_points(metric: &[u8], v: &mut impl Visitor) -> Result<()> {
    let mut fields = Fields::new(metric);
    while let Some((n, value)) = fields.next_field()? {
        // gauge 5, sum 7, histogram 9, exponential_histogram 10, summary 11; each holds
        // its data points in field 1, whose attributes are field 7, 7, 9, 1, 7.
        let attributes_field = match n {
            5 | 7 | 11 => 7,
            9 => 9,
            10 => 1,
            _ => continue,
        };
        if let Value::Bytes(data) = value {
            each(data, 1, |point| item_seq(point, attributes_field, v))?;
        }
    }
    Ok(())
}

/// The rejected item count of an export response's partial success (field 1 { 1: int64 }).
pub fn rejected_items(response: &[u8]) -> Result<u64> {
    let mut rejected = 0;
    each(response, 1, |partial| {
        let mut fields = Fields::new(partial);
        while let Some((n, v)) = fields.next_field()? {
            if let (1, Value::Varint(r)) = (n, v) {
                rejected = r;
            }
        }
        Ok(())
    })?;
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::payload::{Shape, Templates};

    #[derive(Default)]
    struct Collect {
        resources: Vec<Option<u64>>,
        seqs: Vec<Option<u64>>,
    }

    impl Visitor for Collect {
        fn resource(&mut self, sent: Option<u64>) {
            self.resources.push(sent);
        }
        fn item(&mut self, seq: Option<u64>) {
            self.seqs.push(seq);
        }
    }

    #[test]
    fn scans_what_the_generator_stamps() {
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let shape = Shape::new(signal, 37);
            let t = Templates::build(&shape, false);
            let body = t.render(3, 1000 + 3 * 37, 1_700_000_000_123_456_789);
            let mut c = Collect::default();
            scan(signal, &body, &mut c).unwrap();
            assert_eq!(c.resources, vec![Some(1_700_000_000_123_456_789)]);
            let want: Vec<Option<u64>> = (1000 + 3 * 37..1000 + 4 * 37).map(Some).collect();
            assert_eq!(c.seqs, want, "{signal:?}");
        }
    }

    #[test]
    fn reads_partial_success() {
        // ExportTraceServiceResponse { partial_success { rejected_spans: 7, error_message: "x" } }
        let resp = [0x0a, 0x05, 0x08, 0x07, 0x12, 0x01, b'x'];
        assert_eq!(rejected_items(&resp).unwrap(), 7);
        assert_eq!(rejected_items(&[]).unwrap(), 0);
    }

    #[test]
    fn rejects_truncated_input() {
        let mut c = Collect::default();
        assert!(scan(Signal::Traces, &[0x0a, 0x05, 0x01], &mut c).is_err());
    }
}
