//! Splitting a batch at item granularity (spans, data points, log records) while keeping
//! each item under its resource and scope.

use super::metrics::{metric::Data, Metric, ResourceMetrics, ScopeMetrics};
use super::{logs, metric_point_count, trace, Logs, Metrics, Payload, Traces};

/// Moves up to `n` items from the front of `groups` into a new list, cloning only the
/// resource and scope of a group that is cut in two.
macro_rules! take_front {
    ($groups:expr, $n:expr, $scopes:ident, $items:ident, $Resource:ty, $Scope:ty) => {{
        let groups: &mut Vec<$Resource> = $groups;
        let mut remaining: usize = $n;
        let mut whole = 0usize;
        // Whole resource groups first: they move without copying.
        for group in groups.iter() {
            let count: usize = group.$scopes.iter().map(|s| s.$items.len()).sum();
            if count > remaining {
                break;
            }
            remaining -= count;
            whole += 1;
        }
        let mut out: Vec<$Resource> = groups.drain(..whole).collect();
        if remaining > 0 {
            if let Some(group) = groups.first_mut() {
                let mut part = <$Resource>::default();
                part.resource = group.resource.clone();
                part.schema_url = group.schema_url.clone();
                let mut whole_scopes = 0usize;
                for scope in group.$scopes.iter() {
                    if scope.$items.len() > remaining {
                        break;
                    }
                    remaining -= scope.$items.len();
                    whole_scopes += 1;
                }
                part.$scopes = group.$scopes.drain(..whole_scopes).collect();
                if remaining > 0 {
                    if let Some(scope) = group.$scopes.first_mut() {
                        let mut cut = <$Scope>::default();
                        cut.scope = scope.scope.clone();
                        cut.schema_url = scope.schema_url.clone();
                        cut.$items = scope.$items.drain(..remaining).collect();
                        part.$scopes.push(cut);
                    }
                }
                out.push(part);
            }
        }
        out
    }};
}

impl Traces {
    /// Removes the first `n` spans into a new batch.
    pub fn split_front(&mut self, n: usize) -> Traces {
        let out = take_front!(
            &mut self.0.resource_spans,
            n,
            scope_spans,
            spans,
            trace::ResourceSpans,
            trace::ScopeSpans
        );
        Traces(super::ExportTraceServiceRequest {
            resource_spans: out,
        })
    }
}

impl Logs {
    /// Removes the first `n` log records into a new batch.
    pub fn split_front(&mut self, n: usize) -> Logs {
        let out = take_front!(
            &mut self.0.resource_logs,
            n,
            scope_logs,
            log_records,
            logs::ResourceLogs,
            logs::ScopeLogs
        );
        Logs(super::ExportLogsServiceRequest { resource_logs: out })
    }
}

/// Moves the first `n` data points of `metric` into a copy of its descriptor.
fn split_metric(metric: &mut Metric, n: usize) -> Metric {
    let mut part = Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: metric.metadata.clone(),
        data: None,
    };
    part.data = match &mut metric.data {
        Some(Data::Gauge(g)) => Some(Data::Gauge(super::metrics::Gauge {
            data_points: g.data_points.drain(..n.min(g.data_points.len())).collect(),
        })),
        Some(Data::Sum(s)) => Some(Data::Sum(super::metrics::Sum {
            data_points: s.data_points.drain(..n.min(s.data_points.len())).collect(),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        })),
        Some(Data::Histogram(h)) => Some(Data::Histogram(super::metrics::Histogram {
            data_points: h.data_points.drain(..n.min(h.data_points.len())).collect(),
            aggregation_temporality: h.aggregation_temporality,
        })),
        Some(Data::ExponentialHistogram(h)) => Some(Data::ExponentialHistogram(
            super::metrics::ExponentialHistogram {
                data_points: h.data_points.drain(..n.min(h.data_points.len())).collect(),
                aggregation_temporality: h.aggregation_temporality,
            },
        )),
        Some(Data::Summary(s)) => Some(Data::Summary(super::metrics::Summary {
            data_points: s.data_points.drain(..n.min(s.data_points.len())).collect(),
        })),
        None => None,
    };
    part
}

/// How many whole entries from the front fit in `remaining` items, and the items they hold.
fn whole_prefix<T>(list: &[T], remaining: usize, count: impl Fn(&T) -> usize) -> (usize, usize) {
    let mut taken = 0;
    let mut whole = 0;
    for entry in list {
        let c = count(entry);
        if taken + c > remaining {
            break;
        }
        taken += c;
        whole += 1;
    }
    (whole, taken)
}

fn scope_points(scope: &ScopeMetrics) -> usize {
    scope.metrics.iter().map(metric_point_count).sum()
}

fn resource_points(resource: &ResourceMetrics) -> usize {
    resource.scope_metrics.iter().map(scope_points).sum()
}

impl Metrics {
    /// Removes the first `n` data points into a new batch; a metric cut in two keeps its
    /// name, description, unit and temporality on both sides.
    pub fn split_front(&mut self, n: usize) -> Metrics {
        let groups = &mut self.0.resource_metrics;
        // Whole resources move without copying; drain keeps this linear.
        let (whole, taken) = whole_prefix(groups, n, resource_points);
        let mut out: Vec<ResourceMetrics> = groups.drain(..whole).collect();
        let mut remaining = n - taken;
        if remaining > 0 {
            if let Some(group) = groups.first_mut() {
                let mut part = ResourceMetrics {
                    resource: group.resource.clone(),
                    scope_metrics: Vec::new(),
                    schema_url: group.schema_url.clone(),
                };
                let (whole, taken) = whole_prefix(&group.scope_metrics, remaining, scope_points);
                part.scope_metrics = group.scope_metrics.drain(..whole).collect();
                remaining -= taken;
                if remaining > 0 {
                    if let Some(scope) = group.scope_metrics.first_mut() {
                        let mut cut = ScopeMetrics {
                            scope: scope.scope.clone(),
                            metrics: Vec::new(),
                            schema_url: scope.schema_url.clone(),
                        };
                        let (whole, taken) =
                            whole_prefix(&scope.metrics, remaining, metric_point_count);
                        cut.metrics = scope.metrics.drain(..whole).collect();
                        remaining -= taken;
                        if remaining > 0 {
                            if let Some(metric) = scope.metrics.first_mut() {
                                cut.metrics.push(split_metric(metric, remaining));
                            }
                        }
                        part.scope_metrics.push(cut);
                    }
                }
                out.push(part);
            }
        }
        Metrics(super::ExportMetricsServiceRequest {
            resource_metrics: out,
        })
    }
}

impl Payload {
    /// Removes the first `n` items (spans, data points, log records) into a new batch.
    pub fn split_front(&mut self, n: usize) -> Payload {
        match self {
            Payload::Traces(t) => Payload::Traces(t.split_front(n)),
            Payload::Metrics(m) => Payload::Metrics(m.split_front(n)),
            Payload::Logs(l) => Payload::Logs(l.split_front(n)),
            Payload::Encoded(e) => Payload::Encoded(e.split_front(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::InstrumentationScope;
    use super::super::metrics::{Gauge, NumberDataPoint};
    use super::super::resource::Resource;
    use super::*;

    fn traces(shape: &[&[usize]]) -> Traces {
        Traces(super::super::ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .enumerate()
                .map(|(r, scopes)| trace::ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![],
                        dropped_attributes_count: r as u32,
                        entity_refs: vec![],
                    }),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(s, n)| trace::ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("scope{s}"),
                                ..Default::default()
                            }),
                            spans: (0..*n)
                                .map(|i| trace::Span {
                                    name: format!("r{r}s{s}i{i}"),
                                    ..Default::default()
                                })
                                .collect(),
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        })
    }

    fn names(t: &Traces) -> Vec<String> {
        t.0.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn splits_traces_keeping_resource_and_scope() {
        let mut t = traces(&[&[2, 3], &[4]]);
        let all = names(&t);
        let front = t.split_front(3);
        assert_eq!(front.span_count(), 3);
        assert_eq!(t.span_count(), 6);
        let mut joined = names(&front);
        joined.extend(names(&t));
        assert_eq!(joined, all, "order kept, nothing lost");
        // The cut scope appears on both sides with its name.
        assert_eq!(front.0.resource_spans.len(), 1);
        assert_eq!(front.0.resource_spans[0].scope_spans.len(), 2);
        assert_eq!(
            t.0.resource_spans[0].scope_spans[0]
                .scope
                .as_ref()
                .map(|s| s.name.as_str()),
            Some("scope1")
        );
        let rest = t.split_front(100);
        assert_eq!(rest.span_count(), 6);
        assert_eq!(t.span_count(), 0);
        assert!(t.0.resource_spans.is_empty());
    }

    #[test]
    fn splitting_many_small_metrics_is_linear() {
        let metric = Metric {
            name: "m".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default()],
            })),
            ..Default::default()
        };
        let mut m = Metrics(super::super::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![metric; 50_000],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let started = std::time::Instant::now();
        let mut pieces = 0;
        while m.data_point_count() > 0 {
            assert!(m.split_front(1000).data_point_count() == 1000);
            pieces += 1;
        }
        assert_eq!(pieces, 50);
        // Quadratic front removal took seconds here; linear takes milliseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn splits_metrics_inside_a_metric() {
        let metric = |n: usize| Metric {
            name: "m".into(),
            unit: "s".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: (0..n)
                    .map(|i| NumberDataPoint {
                        time_unix_nano: i as u64,
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        };
        let mut m = Metrics(super::super::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![metric(5), metric(2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let front = m.split_front(3);
        assert_eq!(front.data_point_count(), 3);
        assert_eq!(m.data_point_count(), 4);
        assert_eq!(
            m.metric_count(),
            2,
            "the cut metric stays with its remaining points"
        );
        assert_eq!(
            m.0.resource_metrics[0].scope_metrics[0].metrics[0].unit,
            "s"
        );
        let front = m.split_front(3);
        assert_eq!(front.data_point_count(), 3);
        assert_eq!(m.data_point_count(), 1);
    }
}
