//! Moving items under the service of their connector, the same way for every signal.
//!
//! Two passes. The first reads the batch and decides, per resource, which group (connector,
//! or none) each item belongs to; it allocates nothing per item. The second edits: a
//! resource whose items all belong to one connector is renamed in place, and only a
//! resource with items of several groups is split, one copy of it per group.

use std::collections::HashMap;
use std::mem;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::metrics::{
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{logs, trace};

use super::rules::{Resolver, Rules, SERVICE_NAME};

/// Resource spans, metrics or logs.
pub(crate) trait ResourceGroup: Sized {
    type Scope: ScopeGroup;
    fn resource(&self) -> Option<&Resource>;
    fn resource_mut(&mut self) -> &mut Option<Resource>;
    fn scopes(&self) -> &[Self::Scope];
    fn scopes_mut(&mut self) -> &mut Vec<Self::Scope>;
    /// The same resource and schema, with no scopes.
    fn empty_copy(&self) -> Self;
}

/// Scope spans, metrics or logs.
pub(crate) trait ScopeGroup: Sized {
    type Entry: Entry;
    fn scope_attributes(&self) -> &[KeyValue];
    fn entries(&self) -> &[Self::Entry];
    fn entries_mut(&mut self) -> &mut Vec<Self::Entry>;
    /// The same scope and schema, with no entries.
    fn empty_copy(&self) -> Self;
}

/// What a scope holds: a span or log record (one item), or a metric (one item per data
/// point).
pub(crate) trait Entry: Sized {
    fn item_count(&self) -> usize;
    fn item_attributes(&self, item: usize) -> &[KeyValue];
    /// Hands this entry to the group of its items; split into one part per group when they
    /// differ. `groups` holds each item's group; `fallback` is for an entry with no items.
    /// `slots` is scratch space, all zeros on entry and on return.
    fn split_into(
        self,
        groups: &[u32],
        fallback: u32,
        slots: &mut Vec<u32>,
        emit: &mut impl FnMut(u32, Self),
    );
}

macro_rules! groups {
    ($resource:ty, $scopes:ident, $scope:ty, $entries:ident, $entry:ty) => {
        impl ResourceGroup for $resource {
            type Scope = $scope;
            fn resource(&self) -> Option<&Resource> {
                self.resource.as_ref()
            }
            fn resource_mut(&mut self) -> &mut Option<Resource> {
                &mut self.resource
            }
            fn scopes(&self) -> &[$scope] {
                &self.$scopes
            }
            fn scopes_mut(&mut self) -> &mut Vec<$scope> {
                &mut self.$scopes
            }
            fn empty_copy(&self) -> Self {
                Self {
                    resource: self.resource.clone(),
                    $scopes: Vec::new(),
                    schema_url: self.schema_url.clone(),
                }
            }
        }

        impl ScopeGroup for $scope {
            type Entry = $entry;
            fn scope_attributes(&self) -> &[KeyValue] {
                self.scope.as_ref().map_or(&[], |s| s.attributes.as_slice())
            }
            fn entries(&self) -> &[$entry] {
                &self.$entries
            }
            fn entries_mut(&mut self) -> &mut Vec<$entry> {
                &mut self.$entries
            }
            fn empty_copy(&self) -> Self {
                Self {
                    scope: self.scope.clone(),
                    $entries: Vec::new(),
                    schema_url: self.schema_url.clone(),
                }
            }
        }
    };
}

groups!(
    trace::ResourceSpans,
    scope_spans,
    trace::ScopeSpans,
    spans,
    trace::Span
);
groups!(
    ResourceMetrics,
    scope_metrics,
    ScopeMetrics,
    metrics,
    Metric
);
groups!(
    logs::ResourceLogs,
    scope_logs,
    logs::ScopeLogs,
    log_records,
    logs::LogRecord
);

macro_rules! single_item {
    ($entry:ty) => {
        impl Entry for $entry {
            fn item_count(&self) -> usize {
                1
            }
            fn item_attributes(&self, _item: usize) -> &[KeyValue] {
                &self.attributes
            }
            fn split_into(
                self,
                groups: &[u32],
                fallback: u32,
                _slots: &mut Vec<u32>,
                emit: &mut impl FnMut(u32, Self),
            ) {
                emit(groups.first().copied().unwrap_or(fallback), self);
            }
        }
    };
}

single_item!(trace::Span);
single_item!(logs::LogRecord);

impl Entry for Metric {
    fn item_count(&self) -> usize {
        ferrotel_pipeline::pdata::metric_point_count(self)
    }

    fn item_attributes(&self, item: usize) -> &[KeyValue] {
        let attributes = match &self.data {
            Some(Data::Gauge(g)) => g.data_points.get(item).map(|p| &p.attributes),
            Some(Data::Sum(s)) => s.data_points.get(item).map(|p| &p.attributes),
            Some(Data::Histogram(h)) => h.data_points.get(item).map(|p| &p.attributes),
            Some(Data::ExponentialHistogram(h)) => h.data_points.get(item).map(|p| &p.attributes),
            Some(Data::Summary(s)) => s.data_points.get(item).map(|p| &p.attributes),
            None => None,
        };
        attributes.map_or(&[], Vec::as_slice)
    }

    fn split_into(
        self,
        groups: &[u32],
        fallback: u32,
        slots: &mut Vec<u32>,
        emit: &mut impl FnMut(u32, Self),
    ) {
        let first = groups.first().copied().unwrap_or(fallback);
        if groups.iter().all(|g| *g == first) {
            emit(first, self);
            return;
        }
        let Metric {
            name,
            description,
            unit,
            metadata,
            data,
        } = self;
        // Each part is the same metric (name, description, unit, type, temporality,
        // monotonicity) with some of its points.
        let part = |data: Data| Metric {
            name: name.clone(),
            description: description.clone(),
            unit: unit.clone(),
            metadata: metadata.clone(),
            data: Some(data),
        };
        match data {
            Some(Data::Gauge(g)) => {
                for (group, data_points) in partition(g.data_points, groups, fallback, slots) {
                    emit(group, part(Data::Gauge(Gauge { data_points })));
                }
            }
            Some(Data::Sum(s)) => {
                for (group, data_points) in partition(s.data_points, groups, fallback, slots) {
                    let sum = Sum {
                        data_points,
                        aggregation_temporality: s.aggregation_temporality,
                        is_monotonic: s.is_monotonic,
                    };
                    emit(group, part(Data::Sum(sum)));
                }
            }
            Some(Data::Histogram(h)) => {
                for (group, data_points) in partition(h.data_points, groups, fallback, slots) {
                    let histogram = Histogram {
                        data_points,
                        aggregation_temporality: h.aggregation_temporality,
                    };
                    emit(group, part(Data::Histogram(histogram)));
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                for (group, data_points) in partition(h.data_points, groups, fallback, slots) {
                    let histogram = ExponentialHistogram {
                        data_points,
                        aggregation_temporality: h.aggregation_temporality,
                    };
                    emit(group, part(Data::ExponentialHistogram(histogram)));
                }
            }
            Some(Data::Summary(s)) => {
                for (group, data_points) in partition(s.data_points, groups, fallback, slots) {
                    emit(group, part(Data::Summary(Summary { data_points })));
                }
            }
            // No points means no differing groups; kept for completeness.
            None => emit(
                first,
                Metric {
                    name,
                    description,
                    unit,
                    metadata,
                    data: None,
                },
            ),
        }
    }
}

/// Points sorted into their groups, groups in order of first appearance, each keeping its
/// points' order. `slots` maps a group to its part (index + 1), so the work stays linear
/// however many groups there are.
fn partition<P>(
    points: Vec<P>,
    groups: &[u32],
    fallback: u32,
    slots: &mut Vec<u32>,
) -> Vec<(u32, Vec<P>)> {
    let mut parts: Vec<(u32, Vec<P>)> = Vec::new();
    let mut group = fallback;
    for (i, point) in points.into_iter().enumerate() {
        group = groups.get(i).copied().unwrap_or(group);
        let index = group as usize;
        if slots.len() <= index {
            slots.resize(index + 1, 0);
        }
        let slot = slots.get(index).copied().unwrap_or(0) as usize;
        match slot.checked_sub(1).and_then(|s| parts.get_mut(s)) {
            Some((_, points)) => points.push(point),
            None => {
                parts.push((group, vec![point]));
                if let Some(slot) = slots.get_mut(index) {
                    *slot = parts.len() as u32;
                }
            }
        }
    }
    for (group, _) in &parts {
        if let Some(slot) = slots.get_mut(*group as usize) {
            *slot = 0;
        }
    }
    parts
}

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Per group, in order of first appearance: the new service name, or `None` for the
    /// items without a connector (the resource stays as it was).
    names: Vec<Option<String>>,
    /// Each item's group, in the resource's order; `None` when there is only one group.
    groups: Option<Vec<u32>>,
}

/// Up to this many connectors in a resource, finding a name's group is a scan (cheaper than
/// hashing for a few); beyond, a map.
const SCAN_LIMIT: usize = 8;

/// The distinct connector names of one resource, numbered in order of first appearance.
struct Groups<'a> {
    keys: Vec<Option<&'a str>>,
    index: HashMap<Option<&'a str>, u32>,
    last: Option<(Option<&'a str>, u32)>,
}

impl<'a> Groups<'a> {
    fn new() -> Self {
        Groups {
            keys: Vec::new(),
            index: HashMap::new(),
            last: None,
        }
    }

    fn group_of(&mut self, key: Option<&'a str>) -> u32 {
        // Neighbouring items mostly share their connector.
        if let Some((last, group)) = self.last {
            if last == key {
                return group;
            }
        }
        let found = if self.keys.len() <= SCAN_LIMIT {
            self.keys.iter().position(|k| *k == key).map(|i| i as u32)
        } else {
            self.index.get(&key).copied()
        };
        let group = found.unwrap_or_else(|| {
            let group = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            self.keys.push(key);
            if self.keys.len() > SCAN_LIMIT {
                if self.index.is_empty() {
                    for (i, k) in self.keys.iter().enumerate() {
                        self.index.insert(*k, i as u32);
                    }
                } else {
                    self.index.insert(key, group);
                }
            }
            group
        });
        self.last = Some((key, group));
        group
    }
}

/// Plans every resource of a batch; `None` when nothing in it changes.
pub(crate) fn plan<R: ResourceGroup>(resources: &[R], rules: &Rules) -> Option<Vec<Option<Plan>>> {
    let mut resolver = rules.resolver();
    let plans: Vec<Option<Plan>> = resources
        .iter()
        .map(|r| plan_resource(r, &mut resolver, rules))
        .collect();
    plans.iter().any(Option::is_some).then_some(plans)
}

fn plan_resource<'a, R: ResourceGroup>(
    resource: &'a R,
    resolver: &mut Resolver<'_, 'a>,
    rules: &Rules,
) -> Option<Plan> {
    resolver.enter_resource(resource.resource().map_or(&[], |r| r.attributes.as_slice()));
    let mut groups = Groups::new();
    // Filled only once a second group shows up: until then every item is in group 0.
    let mut assignment: Option<Vec<u32>> = None;
    let mut seen = 0usize;
    for scope in resource.scopes() {
        resolver.enter_scope(scope.scope_attributes());
        for entry in scope.entries() {
            for item in 0..entry.item_count() {
                let name = resolver.resolve(entry.item_attributes(item));
                let group = groups.group_of(name);
                match assignment.as_mut() {
                    Some(assignment) => assignment.push(group),
                    None if group != 0 => {
                        let mut all = Vec::with_capacity(item_total(resource));
                        all.resize(seen, 0);
                        all.push(group);
                        assignment = Some(all);
                    }
                    None => {}
                }
                seen += 1;
            }
        }
    }
    let first = groups.keys.first().copied()?;
    match assignment {
        // One connector for the whole resource: renamed in place. None at all: untouched.
        None => first.map(|name| Plan {
            names: vec![Some(rules.service_name(name))],
            groups: None,
        }),
        Some(assignment) => Some(Plan {
            names: groups
                .keys
                .iter()
                .map(|key| key.map(|name| rules.service_name(name)))
                .collect(),
            groups: Some(assignment),
        }),
    }
}

fn item_total<R: ResourceGroup>(resource: &R) -> usize {
    resource
        .scopes()
        .iter()
        .flat_map(|s| s.entries())
        .map(Entry::item_count)
        .sum()
}

/// Carries out the plans of [`plan`] on the same resources.
pub(crate) fn apply<R: ResourceGroup>(
    resources: &mut Vec<R>,
    plans: Vec<Option<Plan>>,
    rules: &Rules,
) {
    let original_to = rules.original_to();
    if plans.iter().flatten().all(|p| p.groups.is_none()) {
        for (resource, plan) in resources.iter_mut().zip(plans) {
            if let Some(Some(name)) = plan.and_then(|p| p.names.into_iter().next()) {
                rename(resource.resource_mut(), name, original_to);
            }
        }
        return;
    }
    let extra: usize = plans
        .iter()
        .flatten()
        .map(|p| p.names.len().saturating_sub(1))
        .sum();
    let old = mem::take(resources);
    resources.reserve(old.len() + extra);
    let mut plans = plans.into_iter();
    for mut resource in old {
        match plans.next().flatten() {
            None => resources.push(resource),
            Some(Plan {
                names,
                groups: Some(groups),
            }) => split(resource, names, &groups, original_to, resources),
            Some(Plan {
                names,
                groups: None,
            }) => {
                if let Some(Some(name)) = names.into_iter().next() {
                    rename(resource.resource_mut(), name, original_to);
                }
                resources.push(resource);
            }
        }
    }
}

/// Replaces one resource with one copy per group, each holding that group's items under
/// copies of their scopes, in their order. An entry without items (a scope with no spans,
/// a metric with no points) goes with the group of the item before it.
fn split<R: ResourceGroup>(
    mut resource: R,
    names: Vec<Option<String>>,
    groups: &[u32],
    original_to: Option<&str>,
    out: &mut Vec<R>,
) {
    if names.is_empty() {
        out.push(resource);
        return;
    }
    let base = out.len();
    for name in names {
        let mut part = resource.empty_copy();
        if let Some(name) = name {
            rename(part.resource_mut(), name, original_to);
        }
        out.push(part);
    }
    let Some(parts) = out.get_mut(base..) else {
        return;
    };
    // Per part: the source scope its last scope copy came from.
    let mut last_scope = vec![usize::MAX; parts.len()];
    let mut slots = Vec::new();
    let mut cursor = 0usize;
    let mut current = 0u32;
    for (index, mut scope) in mem::take(resource.scopes_mut()).into_iter().enumerate() {
        let entries = mem::take(scope.entries_mut());
        if entries.is_empty() {
            let (part, _) = part_of(parts, current);
            if let Some(part) = part {
                part.scopes_mut().push(scope);
            }
            continue;
        }
        for entry in entries {
            let count = entry.item_count();
            let mine = groups.get(cursor..cursor + count).unwrap_or(&[]);
            cursor += count;
            entry.split_into(mine, current, &mut slots, &mut |group, piece| {
                let (part, at) = part_of(parts, group);
                let Some(part) = part else { return };
                let scopes = part.scopes_mut();
                let same_scope = last_scope.get(at) == Some(&index);
                match scopes.last_mut() {
                    Some(last) if same_scope => last.entries_mut().push(piece),
                    _ => {
                        let mut copy = scope.empty_copy();
                        copy.entries_mut().push(piece);
                        scopes.push(copy);
                        if let Some(slot) = last_scope.get_mut(at) {
                            *slot = index;
                        }
                    }
                }
            });
            current = mine.last().copied().unwrap_or(current);
        }
    }
}

/// The part for a group, and its index; an out-of-range group (not expected) falls to the
/// last part so that nothing is lost.
fn part_of<R>(parts: &mut [R], group: u32) -> (Option<&mut R>, usize) {
    let at = (group as usize).min(parts.len().saturating_sub(1));
    (parts.get_mut(at), at)
}

/// Sets `service.name`, keeping the previous value under `original_to` when asked and
/// when there was one.
fn rename(resource: &mut Option<Resource>, service_name: String, original_to: Option<&str>) {
    let attributes = &mut resource.get_or_insert_with(Resource::default).attributes;
    let new = AnyValue {
        value: Some(any_value::Value::StringValue(service_name)),
    };
    let previous = match attributes.iter_mut().find(|kv| kv.key == SERVICE_NAME) {
        Some(kv) => kv.value.replace(new),
        None => {
            attributes.push(KeyValue {
                key: SERVICE_NAME.to_string(),
                value: Some(new),
                ..Default::default()
            });
            None
        }
    };
    let (Some(key), Some(previous)) = (original_to, previous.filter(|v| v.value.is_some())) else {
        return;
    };
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(previous),
        None => attributes.push(KeyValue {
            key: key.to_string(),
            value: Some(previous),
            ..Default::default()
        }),
    }
}
