//! How a batch becomes records when the exporter partitions: one record per resource (keyed
//! by its attributes) or one per trace (keyed by the trace ID), each keeping the resource and
//! scope its items came with.

use std::borrow::Cow;

use indexmap::IndexMap;

use ferrotel_pipeline::pdata::logs::{LogRecord, ResourceLogs, ScopeLogs};
use ferrotel_pipeline::pdata::trace::{ResourceSpans, ScopeSpans, Span};
use ferrotel_pipeline::pdata::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Logs,
    Metrics, Payload, Traces,
};

use super::keys::{resource_key, trace_key};

/// One record's data and its key (`None`: no key, the partitioner picks).
pub type Keyed<T> = (Option<Vec<u8>>, T);

/// A resource's attributes as a key.
fn key_of(resource: Option<&ferrotel_pipeline::pdata::resource::Resource>) -> Option<Vec<u8>> {
    let attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
    Some(resource_key(attributes).to_vec())
}

/// One record per resource.
fn metrics_by_resource(
    request: ExportMetricsServiceRequest,
) -> Vec<Keyed<ExportMetricsServiceRequest>> {
    request
        .resource_metrics
        .into_iter()
        .map(|rm| {
            (
                key_of(rm.resource.as_ref()),
                ExportMetricsServiceRequest {
                    resource_metrics: vec![rm],
                },
            )
        })
        .collect()
}

/// One record per resource.
fn logs_by_resource(request: ExportLogsServiceRequest) -> Vec<Keyed<ExportLogsServiceRequest>> {
    request
        .resource_logs
        .into_iter()
        .map(|rl| {
            (
                key_of(rl.resource.as_ref()),
                ExportLogsServiceRequest {
                    resource_logs: vec![rl],
                },
            )
        })
        .collect()
}

/// One record per resource.
fn traces_by_resource(request: ExportTraceServiceRequest) -> Vec<Keyed<ExportTraceServiceRequest>> {
    request
        .resource_spans
        .into_iter()
        .map(|rs| {
            (
                key_of(rs.resource.as_ref()),
                ExportTraceServiceRequest {
                    resource_spans: vec![rs],
                },
            )
        })
        .collect()
}

/// A request's items under their resource and scope (each with whatever else those levels
/// carry), the form the per-trace split works on.
type Nested<R, S, I> = Vec<(R, Vec<(S, Vec<I>)>)>;

/// Per id: its items nested as they came, and which source resource and scope the last one
/// came from.
type Groups<R, S, I> = IndexMap<Vec<u8>, (Nested<R, S, I>, Option<(usize, usize)>)>;

/// Groups items by `id`, in the order ids first appear; each group keeps its items under
/// copies of their resource and scope, consecutive items of one scope together.
fn group_by_id<R: Clone, S: Clone, I>(
    resources: Nested<R, S, I>,
    id: impl Fn(&I) -> Vec<u8>,
) -> Vec<(Vec<u8>, Nested<R, S, I>)> {
    let mut groups: Groups<R, S, I> = IndexMap::new();
    for (r, (resource, scopes)) in resources.into_iter().enumerate() {
        for (s, (scope, items)) in scopes.into_iter().enumerate() {
            for item in items {
                let (nested, last) = groups.entry(id(&item)).or_default();
                if last.map(|(lr, _)| lr) != Some(r) {
                    nested.push((resource.clone(), Vec::new()));
                }
                if *last != Some((r, s)) {
                    if let Some((_, target)) = nested.last_mut() {
                        target.push((scope.clone(), Vec::new()));
                    }
                }
                *last = Some((r, s));
                if let Some((_, target)) = nested.last_mut().and_then(|(_, ss)| ss.last_mut()) {
                    target.push(item);
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|(id, (nested, _))| (id, nested))
        .collect()
}

/// One record per trace ID, in the order traces first appear; spans keep their resource and
/// scope.
fn traces_by_trace_id(request: ExportTraceServiceRequest) -> Vec<Keyed<ExportTraceServiceRequest>> {
    let nested = request
        .resource_spans
        .into_iter()
        .map(|rs| {
            let scopes = rs
                .scope_spans
                .into_iter()
                .map(|ss| ((ss.scope, ss.schema_url), ss.spans))
                .collect();
            ((rs.resource, rs.schema_url), scopes)
        })
        .collect();
    group_by_id(nested, |span: &Span| span.trace_id.clone())
        .into_iter()
        .map(|(id, nested)| {
            let resource_spans = nested
                .into_iter()
                .map(|((resource, schema_url), scopes)| ResourceSpans {
                    resource,
                    schema_url,
                    scope_spans: scopes
                        .into_iter()
                        .map(|((scope, schema_url), spans)| ScopeSpans {
                            scope,
                            schema_url,
                            spans,
                        })
                        .collect(),
                })
                .collect();
            (trace_key(&id), ExportTraceServiceRequest { resource_spans })
        })
        .collect()
}

/// One record per trace ID (log records without one share a record without a key), in the
/// order traces first appear; records keep their resource and scope.
fn logs_by_trace_id(request: ExportLogsServiceRequest) -> Vec<Keyed<ExportLogsServiceRequest>> {
    let nested = request
        .resource_logs
        .into_iter()
        .map(|rl| {
            let scopes = rl
                .scope_logs
                .into_iter()
                .map(|sl| ((sl.scope, sl.schema_url), sl.log_records))
                .collect();
            ((rl.resource, rl.schema_url), scopes)
        })
        .collect();
    group_by_id(nested, |record: &LogRecord| record.trace_id.clone())
        .into_iter()
        .map(|(id, nested)| {
            let resource_logs = nested
                .into_iter()
                .map(|((resource, schema_url), scopes)| ResourceLogs {
                    resource,
                    schema_url,
                    scope_logs: scopes
                        .into_iter()
                        .map(|((scope, schema_url), log_records)| ScopeLogs {
                            scope,
                            schema_url,
                            log_records,
                        })
                        .collect(),
                })
                .collect();
            (trace_key(&id), ExportLogsServiceRequest { resource_logs })
        })
        .collect()
}

/// Encodes a batch into records of at most `max` bytes: halves by item count until each
/// encoding fits (a cut in the middle of a resource copies the resource and scope to both
/// sides), in the original order. A single item larger than `max` cannot be cut and comes
/// back apart, with the encodings that fit.
pub fn fit<E>(
    payload: Cow<'_, Payload>,
    max: usize,
    encode: &impl Fn(&Payload) -> Result<Vec<u8>, E>,
) -> Result<(Vec<Vec<u8>>, Vec<Payload>), E> {
    // The usual case, a batch that fits, is encoded from where it is, without a copy.
    let whole = encode(&payload)?;
    if whole.len() <= max {
        return Ok((vec![whole], Vec::new()));
    }
    let (mut fits, mut too_large) = (Vec::new(), Vec::new());
    let mut pending = vec![payload.into_owned()];
    while let Some(mut batch) = pending.pop() {
        let encoded = encode(&batch)?;
        if encoded.len() <= max {
            fits.push(encoded);
            continue;
        }
        let items = batch.item_count();
        if items <= 1 {
            too_large.push(batch);
            continue;
        }
        let front = batch.split_front(items / 2);
        // Keeps the original order: the front half is taken next.
        pending.push(batch);
        pending.push(front);
    }
    Ok((fits, too_large))
}

/// One record per resource, keyed by its attributes.
pub fn by_resource(payload: Payload) -> Vec<Keyed<Payload>> {
    match payload {
        Payload::Traces(t) => wrap(traces_by_resource(t.0), |r| Payload::Traces(Traces(r))),
        Payload::Metrics(m) => wrap(metrics_by_resource(m.0), |r| Payload::Metrics(Metrics(r))),
        Payload::Logs(l) => wrap(logs_by_resource(l.0), |r| Payload::Logs(Logs(r))),
        encoded @ Payload::Encoded(_) => vec![(None, encoded)],
    }
}

/// One record per trace ID (spans and log records); metrics stay whole.
pub fn by_trace_id(payload: Payload) -> Vec<Keyed<Payload>> {
    match payload {
        Payload::Traces(t) => wrap(traces_by_trace_id(t.0), |r| Payload::Traces(Traces(r))),
        Payload::Logs(l) => wrap(logs_by_trace_id(l.0), |r| Payload::Logs(Logs(r))),
        other => vec![(None, other)],
    }
}

fn wrap<T>(parts: Vec<Keyed<T>>, into: impl Fn(T) -> Payload) -> Vec<Keyed<Payload>> {
    parts.into_iter().map(|(k, r)| (k, into(r))).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::pdata::common::{
        any_value::Value, AnyValue, InstrumentationScope, KeyValue,
    };
    use ferrotel_pipeline::pdata::resource::Resource;

    fn resource(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(name.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn scope(name: &str) -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: name.into(),
            ..Default::default()
        })
    }

    fn span(trace: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            name: name.into(),
            ..Default::default()
        }
    }

    /// Two resources; traces 1 and 2 are spread over both and over two scopes.
    fn request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource("a"),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: scope("s1"),
                            spans: vec![span(1, "a1"), span(2, "a2"), span(1, "a3")],
                            schema_url: "u1".into(),
                        },
                        ScopeSpans {
                            scope: scope("s2"),
                            spans: vec![span(1, "a4")],
                            schema_url: String::new(),
                        },
                    ],
                    schema_url: "r1".into(),
                },
                ResourceSpans {
                    resource: resource("b"),
                    scope_spans: vec![ScopeSpans {
                        scope: scope("s1"),
                        spans: vec![span(2, "b1"), span(1, "b2")],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                },
            ],
        }
    }

    fn names(r: &ExportTraceServiceRequest) -> Vec<Vec<Vec<String>>> {
        r.resource_spans
            .iter()
            .map(|rs| {
                rs.scope_spans
                    .iter()
                    .map(|ss| ss.spans.iter().map(|s| s.name.clone()).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_record_per_trace_keeping_resources_and_scopes() {
        let parts = traces_by_trace_id(request());
        assert_eq!(parts.len(), 2);
        let (key1, t1) = &parts[0];
        assert_eq!(
            key1.as_deref(),
            Some(&b"01010101010101010101010101010101"[..])
        );
        assert_eq!(
            names(t1),
            vec![vec![vec!["a1", "a3"], vec!["a4"]], vec![vec!["b2"]]]
        );
        assert_eq!(t1.resource_spans[0].schema_url, "r1");
        assert_eq!(t1.resource_spans[0].scope_spans[0].schema_url, "u1");
        assert_eq!(t1.resource_spans[1].resource, resource("b"));
        let (_, t2) = &parts[1];
        assert_eq!(names(t2), vec![vec![vec!["a2"]], vec![vec!["b1"]]]);
        let spans: usize = parts
            .iter()
            .flat_map(|(_, r)| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        assert_eq!(spans, 6);
    }

    #[test]
    fn one_record_per_resource_keyed_by_its_attributes() {
        let parts = traces_by_resource(request());
        assert_eq!(parts.len(), 2);
        assert_ne!(parts[0].0, parts[1].0);
        assert_eq!(names(&parts[1].1), vec![vec![vec!["b1", "b2"]]]);
        let again = traces_by_resource(request());
        assert_eq!(parts[0].0, again[0].0);
    }

    #[test]
    fn logs_without_a_trace_share_an_unkeyed_record() {
        let record = |trace: Vec<u8>, body: &str| LogRecord {
            trace_id: trace,
            body: Some(AnyValue {
                value: Some(Value::StringValue(body.into())),
            }),
            ..Default::default()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource("a"),
                scope_logs: vec![ScopeLogs {
                    scope: scope("s"),
                    log_records: vec![
                        record(Vec::new(), "x"),
                        record(vec![3; 16], "y"),
                        record(Vec::new(), "z"),
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let parts = logs_by_trace_id(request.clone());
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, None);
        assert_eq!(
            parts[0].1.resource_logs[0].scope_logs[0].log_records.len(),
            2
        );
        assert!(parts[1].0.is_some());
        let by_resource = logs_by_resource(request);
        assert_eq!(by_resource.len(), 1);
    }

    #[test]
    fn batches_are_cut_until_each_fits() {
        use prost::Message as _;
        let payload = Payload::Traces(ferrotel_pipeline::Traces(request()));
        let whole = payload.encoded_len();
        let encode = |p: &Payload| Ok::<_, ()>(p.to_protobuf());
        let (fits, too_large) = fit(Cow::Borrowed(&payload), whole, &encode).unwrap();
        assert_eq!((fits.len(), too_large.len()), (1, 0));
        let (fits, too_large) = fit(Cow::Borrowed(&payload), whole / 2, &encode).unwrap();
        assert!(too_large.is_empty());
        assert!(fits.len() >= 2);
        assert!(fits.iter().all(|p| p.len() <= whole / 2));
        let order: Vec<String> = fits
            .iter()
            .flat_map(|bytes| {
                let request = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
                names(&request)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(order, ["a1", "a2", "a3", "a4", "b1", "b2"]);
        // Smaller than any single span: every span comes back as too large, none is lost.
        let (fits, too_large) = fit(Cow::Owned(payload), 10, &encode).unwrap();
        assert!(fits.is_empty());
        assert_eq!(too_large.len(), 6);
    }
}
