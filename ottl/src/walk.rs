//! Runs a function on every item of one context in a batch, building each item's
//! [`TransformContext`], and removes the items for which it answers `false`. Used by the
//! transform processor (which keeps everything) and the filter processor.

use ferrotel_pipeline::pdata::logs::ResourceLogs;
use ferrotel_pipeline::pdata::metrics::{metric, ResourceMetrics};
use ferrotel_pipeline::pdata::trace::ResourceSpans;

use crate::context::{point_count, ContextKind, Item, TransformContext};

/// Which items to keep, allocated only once one is dropped.
struct Mask {
    keep: Option<Vec<bool>>,
    seen: usize,
}

impl Mask {
    fn new() -> Mask {
        Mask {
            keep: None,
            seen: 0,
        }
    }

    fn push(&mut self, keep: bool) {
        match &mut self.keep {
            Some(v) => v.push(keep),
            None if !keep => {
                let mut v = vec![true; self.seen];
                v.push(false);
                self.keep = Some(v);
            }
            None => {}
        }
        self.seen += 1;
    }

    fn apply<T>(self, items: &mut Vec<T>) {
        if let Some(keep) = self.keep {
            let mut i = 0;
            items.retain(|_| {
                i += 1;
                keep.get(i - 1).copied().unwrap_or(true)
            });
        }
    }
}

fn retain_points(data: &mut Option<metric::Data>, mask: Mask) {
    match data {
        Some(metric::Data::Gauge(g)) => mask.apply(&mut g.data_points),
        Some(metric::Data::Sum(s)) => mask.apply(&mut s.data_points),
        Some(metric::Data::Histogram(h)) => mask.apply(&mut h.data_points),
        Some(metric::Data::ExponentialHistogram(h)) => mask.apply(&mut h.data_points),
        Some(metric::Data::Summary(s)) => mask.apply(&mut s.data_points),
        None => {}
    }
}

/// Visits every item of `kind` in a traces batch; drops those `f` answers `false` for.
pub fn traces<E>(
    batch: &mut Vec<ResourceSpans>,
    kind: ContextKind,
    mut f: impl FnMut(&mut TransformContext) -> Result<bool, E>,
) -> Result<(), E> {
    let mut keep_resources = Mask::new();
    for rs in batch.iter_mut() {
        let ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        } = rs;
        if kind == ContextKind::Resource {
            keep_resources.push(f(&mut TransformContext {
                resource,
                resource_schema_url: schema_url,
                scope: None,
                item: Item::None,
                cache: Vec::new(),
            })?);
            continue;
        }
        let mut keep_scopes = Mask::new();
        for ss in scope_spans.iter_mut() {
            if kind == ContextKind::Scope {
                keep_scopes.push(f(&mut TransformContext {
                    resource,
                    resource_schema_url: schema_url,
                    scope: Some((&mut ss.scope, &mut ss.schema_url)),
                    item: Item::None,
                    cache: Vec::new(),
                })?);
                continue;
            }
            let mut keep_spans = Mask::new();
            for span in ss.spans.iter_mut() {
                if kind == ContextKind::Span {
                    keep_spans.push(f(&mut TransformContext {
                        resource,
                        resource_schema_url: schema_url,
                        scope: Some((&mut ss.scope, &mut ss.schema_url)),
                        item: Item::Span(span),
                        cache: Vec::new(),
                    })?);
                    continue;
                }
                let mut keep_events = Mask::new();
                for event in 0..span.events.len() {
                    keep_events.push(f(&mut TransformContext {
                        resource,
                        resource_schema_url: schema_url,
                        scope: Some((&mut ss.scope, &mut ss.schema_url)),
                        item: Item::SpanEvent { span, event },
                        cache: Vec::new(),
                    })?);
                }
                keep_events.apply(&mut span.events);
            }
            keep_spans.apply(&mut ss.spans);
        }
        keep_scopes.apply(scope_spans);
    }
    keep_resources.apply(batch);
    Ok(())
}

/// Visits every item of `kind` in a metrics batch; drops those `f` answers `false` for.
pub fn metrics<E>(
    batch: &mut Vec<ResourceMetrics>,
    kind: ContextKind,
    mut f: impl FnMut(&mut TransformContext) -> Result<bool, E>,
) -> Result<(), E> {
    let mut keep_resources = Mask::new();
    for rm in batch.iter_mut() {
        let ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        } = rm;
        if kind == ContextKind::Resource {
            keep_resources.push(f(&mut TransformContext {
                resource,
                resource_schema_url: schema_url,
                scope: None,
                item: Item::None,
                cache: Vec::new(),
            })?);
            continue;
        }
        let mut keep_scopes = Mask::new();
        for sm in scope_metrics.iter_mut() {
            if kind == ContextKind::Scope {
                keep_scopes.push(f(&mut TransformContext {
                    resource,
                    resource_schema_url: schema_url,
                    scope: Some((&mut sm.scope, &mut sm.schema_url)),
                    item: Item::None,
                    cache: Vec::new(),
                })?);
                continue;
            }
            let mut keep_metrics = Mask::new();
            for m in sm.metrics.iter_mut() {
                if kind == ContextKind::Metric {
                    keep_metrics.push(f(&mut TransformContext {
                        resource,
                        resource_schema_url: schema_url,
                        scope: Some((&mut sm.scope, &mut sm.schema_url)),
                        item: Item::Metric(m),
                        cache: Vec::new(),
                    })?);
                    continue;
                }
                let mut keep_points = Mask::new();
                for point in 0..point_count(m) {
                    keep_points.push(f(&mut TransformContext {
                        resource,
                        resource_schema_url: schema_url,
                        scope: Some((&mut sm.scope, &mut sm.schema_url)),
                        item: Item::DataPoint { metric: m, point },
                        cache: Vec::new(),
                    })?);
                }
                retain_points(&mut m.data, keep_points);
            }
            keep_metrics.apply(&mut sm.metrics);
        }
        keep_scopes.apply(scope_metrics);
    }
    keep_resources.apply(batch);
    Ok(())
}

/// Visits every item of `kind` in a logs batch; drops those `f` answers `false` for.
pub fn logs<E>(
    batch: &mut Vec<ResourceLogs>,
    kind: ContextKind,
    mut f: impl FnMut(&mut TransformContext) -> Result<bool, E>,
) -> Result<(), E> {
    let mut keep_resources = Mask::new();
    for rl in batch.iter_mut() {
        let ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        } = rl;
        if kind == ContextKind::Resource {
            keep_resources.push(f(&mut TransformContext {
                resource,
                resource_schema_url: schema_url,
                scope: None,
                item: Item::None,
                cache: Vec::new(),
            })?);
            continue;
        }
        let mut keep_scopes = Mask::new();
        for sl in scope_logs.iter_mut() {
            if kind == ContextKind::Scope {
                keep_scopes.push(f(&mut TransformContext {
                    resource,
                    resource_schema_url: schema_url,
                    scope: Some((&mut sl.scope, &mut sl.schema_url)),
                    item: Item::None,
                    cache: Vec::new(),
                })?);
                continue;
            }
            let mut keep_logs = Mask::new();
            for log in sl.log_records.iter_mut() {
                keep_logs.push(f(&mut TransformContext {
                    resource,
                    resource_schema_url: schema_url,
                    scope: Some((&mut sl.scope, &mut sl.schema_url)),
                    item: Item::Log(log),
                    cache: Vec::new(),
                })?);
            }
            keep_logs.apply(&mut sl.log_records);
        }
        keep_scopes.apply(scope_logs);
    }
    keep_resources.apply(batch);
    Ok(())
}

/// Drops scopes without items and resources without scopes, as the filter processor does
/// after filtering; metrics left without points go too.
pub fn prune_traces(batch: &mut Vec<ResourceSpans>) {
    for rs in batch.iter_mut() {
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    batch.retain(|rs| !rs.scope_spans.is_empty());
}

pub fn prune_metrics(batch: &mut Vec<ResourceMetrics>) {
    for rm in batch.iter_mut() {
        for sm in rm.scope_metrics.iter_mut() {
            sm.metrics.retain(|m| point_count(m) > 0);
        }
        rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
    }
    batch.retain(|rm| !rm.scope_metrics.is_empty());
}

pub fn prune_logs(batch: &mut Vec<ResourceLogs>) {
    for rl in batch.iter_mut() {
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    batch.retain(|rl| !rl.scope_logs.is_empty());
}
