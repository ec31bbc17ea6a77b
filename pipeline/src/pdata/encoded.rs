//! Telemetry kept as the protobuf bytes it arrived in, for pipelines that never look inside
//! it (only batching, or nothing, between an OTLP receiver and OTLP exporters).
//!
//! Protobuf messages concatenate: the encoding of an export request is the concatenation of
//! its top-level entries (one per resource), so batching appends entries and exporting
//! writes them out, with no decoding and no re-encoding. The receiver checks every request
//! in full first ([`super::wire`]), so a batch spliced from many senders' requests always
//! decodes, and one sender's malformed data cannot spoil a batch shared with others.

use bytes::Bytes;
use prost::Message;

use super::wire::{self, WireError};
use super::{logs, metrics, trace, Logs, Metrics, Payload, Signal, Traces};

/// One top-level entry of an export request: the whole field (key, length and a
/// Resource{Spans,Metrics,Logs} message) and the items it holds.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    bytes: Bytes,
    items: usize,
}

/// An export request of one signal in its protobuf encoding, checked and indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    signal: Signal,
    entries: Vec<Entry>,
    items: usize,
    len: usize,
}

impl Encoded {
    /// Checks `bytes` as an export request of `signal` (every field prost would decode) and
    /// indexes its entries without copying them.
    pub fn parse(signal: Signal, bytes: Bytes) -> Result<Encoded, WireError> {
        let raw = wire::index(signal, &bytes)?;
        let mut encoded = Encoded::empty(signal);
        encoded.entries.reserve(raw.len());
        for entry in raw {
            encoded.push(Entry {
                bytes: bytes.slice(entry.start..entry.end),
                items: entry.items,
            });
        }
        Ok(encoded)
    }

    /// The encoding of a decoded batch, one entry per resource.
    pub fn from_decoded(payload: &Payload) -> Encoded {
        fn entries<M: Message>(
            signal: Signal,
            groups: &[M],
            count: impl Fn(&M) -> usize,
        ) -> Encoded {
            let mut encoded = Encoded::empty(signal);
            for group in groups {
                // Field 1, length-delimited: the key, then prost writes length and message
                // (into a Vec, which never runs out of room).
                let mut bytes = Vec::with_capacity(group.encoded_len() + 6);
                bytes.push(0x0a);
                group.encode_length_delimited(&mut bytes).ok();
                encoded.push(Entry {
                    bytes: bytes.into(),
                    items: count(group),
                });
            }
            encoded
        }
        match payload {
            Payload::Traces(t) => entries(
                Signal::Traces,
                &t.0.resource_spans,
                super::resource_span_count,
            ),
            Payload::Metrics(m) => entries(
                Signal::Metrics,
                &m.0.resource_metrics,
                super::resource_point_count,
            ),
            Payload::Logs(l) => entries(
                Signal::Logs,
                &l.0.resource_logs,
                super::resource_record_count,
            ),
            Payload::Encoded(e) => e.clone(),
        }
    }

    fn empty(signal: Signal) -> Encoded {
        Encoded {
            signal,
            entries: Vec::new(),
            items: 0,
            len: 0,
        }
    }

    fn push(&mut self, entry: Entry) {
        self.items += entry.items;
        self.len += entry.bytes.len();
        self.entries.push(entry);
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Spans, data points or log records.
    pub fn item_count(&self) -> usize {
        self.items
    }

    /// No resource entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size of the encoded request in bytes.
    pub fn encoded_len(&self) -> usize {
        self.len
    }

    /// Appends the entries of `other`; gives it back if its signal differs.
    pub fn merge(&mut self, other: Encoded) -> Result<(), Encoded> {
        if other.signal != self.signal {
            return Err(other);
        }
        self.entries.reserve(other.entries.len());
        for entry in other.entries {
            self.push(entry);
        }
        Ok(())
    }

    /// The encoded request, as one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for entry in &self.entries {
            out.extend_from_slice(&entry.bytes);
        }
        out
    }

    /// The encoded request as the pieces it is made of, shared, not copied: written one
    /// after the other they are the request.
    pub fn chunks(&self) -> Vec<Bytes> {
        self.entries.iter().map(|e| e.bytes.clone()).collect()
    }

    /// The decoded form. It cannot fail for a batch made by [`Encoded::parse`], which
    /// checked everything prost reads.
    pub fn decode(&self) -> Result<Payload, WireError> {
        fn groups<M: Message + Default>(entries: &[Entry]) -> Result<Vec<M>, WireError> {
            entries
                .iter()
                .map(|e| {
                    let body = wire::entry_body(&e.bytes)?;
                    M::decode(body).map_err(|_| WireError::corrupt())
                })
                .collect()
        }
        Ok(match self.signal {
            Signal::Traces => Payload::Traces(Traces(super::ExportTraceServiceRequest {
                resource_spans: groups::<trace::ResourceSpans>(&self.entries)?,
            })),
            Signal::Metrics => Payload::Metrics(Metrics(super::ExportMetricsServiceRequest {
                resource_metrics: groups::<metrics::ResourceMetrics>(&self.entries)?,
            })),
            Signal::Logs => Payload::Logs(Logs(super::ExportLogsServiceRequest {
                resource_logs: groups::<logs::ResourceLogs>(&self.entries)?,
            })),
        })
    }

    /// Removes the first `n` items into a new batch. Whole entries move as they are; an
    /// entry cut in two is split in its encoding, each half keeping the resource and scope.
    pub fn split_front(&mut self, n: usize) -> Encoded {
        let mut front = Encoded::empty(self.signal);
        let mut remaining = n;
        let whole = self
            .entries
            .iter()
            .take_while(|e| {
                let fits = e.items <= remaining;
                if fits {
                    remaining -= e.items;
                }
                fits
            })
            .count();
        for entry in self.entries.drain(..whole) {
            front.push(entry);
        }
        if remaining > 0 && !self.entries.is_empty() {
            let first = &mut self.entries[0];
            match wire::split_entry(self.signal, &first.bytes, remaining) {
                Ok((head, tail)) => {
                    front.push(Entry {
                        bytes: head.into(),
                        items: remaining,
                    });
                    *first = Entry {
                        bytes: tail.into(),
                        items: first.items - remaining,
                    };
                }
                // Cannot happen to a checked entry; if it did, the whole entry goes, so the
                // caller's loop still makes progress.
                Err(_) => front.push(self.entries.remove(0)),
            }
        }
        self.items = self.entries.iter().map(|e| e.items).sum();
        self.len = self.entries.iter().map(|e| e.bytes.len()).sum();
        front
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pdata::common::InstrumentationScope;
    use crate::pdata::ExportTraceServiceRequest;

    fn request(resources: &[&[usize]]) -> ExportTraceServiceRequest {
        let mut next = 0u8;
        ExportTraceServiceRequest {
            resource_spans: resources
                .iter()
                .enumerate()
                .map(|(r, scopes)| trace::ResourceSpans {
                    schema_url: format!("r{r}"),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(s, n)| trace::ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("s{s}"),
                                ..Default::default()
                            }),
                            spans: (0..*n)
                                .map(|_| {
                                    next += 1;
                                    trace::Span {
                                        span_id: vec![next; 8],
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn parse(r: &ExportTraceServiceRequest) -> Encoded {
        Encoded::parse(Signal::Traces, r.encode_to_vec().into()).unwrap()
    }

    fn ids(p: &Payload) -> Vec<u8> {
        match p {
            Payload::Traces(t) => {
                t.0.resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .map(|s| s.span_id[0])
                    .collect()
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn merge_concatenates_and_decodes_to_the_same_requests() {
        let a = request(&[&[2, 1]]);
        let b = request(&[&[3], &[1]]);
        let mut enc = parse(&a);
        enc.merge(parse(&b)).unwrap();
        assert_eq!(enc.item_count(), 7);
        let mut expected = a.clone();
        expected.resource_spans.extend(b.resource_spans.clone());
        assert_eq!(enc.to_vec(), expected.encode_to_vec());
        assert_eq!(enc.encoded_len(), expected.encoded_len());
        assert_eq!(enc.decode().unwrap(), Payload::from(expected));
        assert!(enc.merge(Encoded::empty(Signal::Logs)).is_err());
    }

    #[test]
    fn split_moves_whole_entries_and_cuts_one_in_two() {
        let r = request(&[&[2], &[3, 2], &[1]]);
        let original = ids(&Payload::from(r.clone()));
        let mut enc = parse(&r);
        let whole = enc.split_front(2);
        assert_eq!(whole.item_count(), 2);
        assert_eq!(whole.entries.len(), 1);
        let cut = enc.split_front(4);
        assert_eq!(cut.item_count(), 4);
        assert_eq!(enc.item_count(), 2);
        let mut seen = ids(&whole.decode().unwrap());
        seen.extend(ids(&cut.decode().unwrap()));
        seen.extend(ids(&enc.decode().unwrap()));
        assert_eq!(seen, original);
        // The cut entry keeps its resource and scopes on both sides.
        let Payload::Traces(t) = cut.decode().unwrap() else {
            unreachable!()
        };
        assert_eq!(t.0.resource_spans[0].schema_url, "r1");
        assert_eq!(t.0.resource_spans[0].scope_spans.len(), 2);
        let Payload::Traces(t) = enc.decode().unwrap() else {
            unreachable!()
        };
        assert_eq!(t.0.resource_spans[0].schema_url, "r1");
        assert_eq!(
            t.0.resource_spans[0].scope_spans[0]
                .scope
                .as_ref()
                .unwrap()
                .name,
            "s1"
        );
        // Everything.
        let all = enc.split_front(100);
        assert_eq!(all.item_count(), 2);
        assert!(enc.is_empty());
        assert_eq!(enc.encoded_len(), 0);
    }

    fn metrics_request() -> crate::pdata::ExportMetricsServiceRequest {
        use crate::pdata::metrics::{self, metric::Data};
        let point = |v: u8| metrics::NumberDataPoint {
            attributes: vec![],
            time_unix_nano: u64::from(v),
            ..Default::default()
        };
        let hist = |v: u8| metrics::HistogramDataPoint {
            count: u64::from(v),
            bucket_counts: vec![1, 2],
            explicit_bounds: vec![1.0],
            ..Default::default()
        };
        let metric = |name: &str, data: Data| metrics::Metric {
            name: name.into(),
            unit: "s".into(),
            description: "d".into(),
            data: Some(data),
            ..Default::default()
        };
        crate::pdata::ExportMetricsServiceRequest {
            resource_metrics: vec![metrics::ResourceMetrics {
                schema_url: "r".into(),
                scope_metrics: vec![
                    metrics::ScopeMetrics {
                        metrics: vec![
                            metric(
                                "sum",
                                Data::Sum(metrics::Sum {
                                    data_points: (1..=3).map(point).collect(),
                                    aggregation_temporality: 2,
                                    is_monotonic: true,
                                }),
                            ),
                            metric(
                                "hist",
                                Data::Histogram(metrics::Histogram {
                                    data_points: (4..=5).map(hist).collect(),
                                    aggregation_temporality: 1,
                                }),
                            ),
                        ],
                        ..Default::default()
                    },
                    metrics::ScopeMetrics {
                        metrics: vec![metric(
                            "gauge",
                            Data::Gauge(metrics::Gauge {
                                data_points: (6..=9).map(point).collect(),
                            }),
                        )],
                        schema_url: "s".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
        }
    }

    /// Cutting a batch in its encoding gives what cutting its decoded form gives, at every
    /// point, for every signal.
    #[test]
    fn encoded_split_matches_decoded_split_everywhere() {
        let logs = crate::pdata::ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![
                    logs::ScopeLogs {
                        log_records: (0..3)
                            .map(|i| logs::LogRecord {
                                severity_text: format!("l{i}"),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    logs::ScopeLogs::default(),
                    logs::ScopeLogs {
                        log_records: vec![logs::LogRecord::default(); 2],
                        schema_url: "x".into(),
                        ..Default::default()
                    },
                ],
                schema_url: "r".into(),
                ..Default::default()
            }],
        };
        let cases: Vec<(Signal, Vec<u8>, Payload)> = vec![
            {
                let r = request(&[&[2, 3], &[4]]);
                (Signal::Traces, r.encode_to_vec(), Payload::from(r))
            },
            {
                let r = metrics_request();
                (Signal::Metrics, r.encode_to_vec(), Payload::from(r))
            },
            (Signal::Logs, logs.encode_to_vec(), Payload::from(logs)),
        ];
        for (signal, bytes, decoded) in cases {
            let total = decoded.item_count();
            for n in 1..total {
                let mut enc = Encoded::parse(signal, bytes.clone().into()).unwrap();
                let head = enc.split_front(n);
                let mut expected_tail = decoded.clone();
                let expected_head = expected_tail.split_front(n);
                assert_eq!(head.item_count(), n, "{signal} at {n}");
                assert_eq!(enc.item_count(), total - n, "{signal} at {n}");
                assert_eq!(
                    head.decode().unwrap(),
                    expected_head,
                    "{signal} head at {n}"
                );
                assert_eq!(enc.decode().unwrap(), expected_tail, "{signal} tail at {n}");
                // Each half is a checked request on its own, with the counts it claims.
                for half in [&head, &enc] {
                    let again = Encoded::parse(signal, half.to_vec().into()).unwrap();
                    assert_eq!(again.item_count(), half.item_count());
                }
            }
        }
    }

    #[test]
    fn a_split_always_makes_progress() {
        // An entry that does not decode (never made by `parse`) moves whole.
        let mut enc = Encoded::empty(Signal::Traces);
        enc.push(Entry {
            bytes: Bytes::from_static(&[0x0a, 0x02, 0xff, 0xff]),
            items: 5,
        });
        let front = enc.split_front(2);
        assert_eq!(front.item_count(), 5);
        assert!(enc.is_empty());
        assert_eq!(enc.item_count(), 0);
    }

    #[test]
    fn from_decoded_round_trips() {
        let r = request(&[&[2, 1], &[4]]);
        let enc = Encoded::from_decoded(&Payload::from(r.clone()));
        assert_eq!(enc.item_count(), 7);
        assert_eq!(enc.to_vec(), r.encode_to_vec());
        assert_eq!(enc, parse(&r));
    }

    #[test]
    fn chunks_are_shared_not_copied() {
        let r = request(&[&[3], &[1]]);
        let bytes: Bytes = r.encode_to_vec().into();
        let enc = Encoded::parse(Signal::Traces, bytes.clone()).unwrap();
        let chunks = enc.chunks();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].as_ptr(), bytes.as_ptr());
        assert_eq!(chunks.concat(), bytes.to_vec());
    }
}
