//! Splitting a batch's series into write requests no larger than `max_batch_size_bytes`
//! (encoded, before compression), each encoded and snappy-compressed once.

use bytes::Bytes;
use prost::encoding::{encoded_len_varint, message};
use prost::Message;

use ferrotel_pipeline::compression;

use super::convert::Converted;
use super::proto::{TimeSeries, WriteRequest};

/// The requests of one batch, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Each request with the data points it stands for.
    pub requests: Vec<(WriteRequest, u64)>,
    /// Data points of series too large for any request.
    pub refused_points: u64,
    pub refused_series: usize,
    /// Some series' samples are spread over several requests, which must then go in order.
    pub split_series: bool,
}

/// The bytes a series takes in a `WriteRequest` (field 1, length-delimited).
fn in_request_len(series: &TimeSeries) -> usize {
    message::encoded_len(1, series)
}

/// The bytes a series whose own encoding is `inner` bytes takes in a `WriteRequest`.
fn wrapped(inner: usize) -> usize {
    1 + encoded_len_varint(inner as u64) + inner
}

/// Packs series into requests in order, each up to `max_bytes`; a series larger than that on
/// its own has its samples (then exemplars) spread over requests of its own, and one whose
/// labels with a single sample do not fit is refused.
pub fn plan(series: Vec<Converted>, max_bytes: usize) -> Plan {
    let mut plan = Plan::default();
    let mut current = WriteRequest::default();
    let mut current_len = 0usize;
    let mut current_points = 0u64;
    let flush = |plan: &mut Plan, current: &mut WriteRequest, len: &mut usize, points: &mut u64| {
        if !current.timeseries.is_empty() {
            plan.requests.push((std::mem::take(current), *points));
        }
        *len = 0;
        *points = 0;
    };
    for Converted { series, points } in series {
        let len = in_request_len(&series);
        if len <= max_bytes {
            if current_len + len > max_bytes {
                flush(
                    &mut plan,
                    &mut current,
                    &mut current_len,
                    &mut current_points,
                );
            }
            current.timeseries.push(series);
            current_len += len;
            current_points += points;
            continue;
        }
        match chunks(series, max_bytes) {
            Some(parts) => {
                flush(
                    &mut plan,
                    &mut current,
                    &mut current_len,
                    &mut current_points,
                );
                plan.split_series |= parts.len() > 1;
                for (i, part) in parts.into_iter().enumerate() {
                    let part_points = if i == 0 { points } else { 0 };
                    plan.requests.push((
                        WriteRequest {
                            timeseries: vec![part],
                        },
                        part_points,
                    ));
                }
            }
            None => {
                plan.refused_points += points;
                plan.refused_series += 1;
            }
        }
    }
    flush(
        &mut plan,
        &mut current,
        &mut current_len,
        &mut current_points,
    );
    plan
}

/// A series cut into pieces of at most `max_bytes` each (in a request), samples in order
/// first, then exemplars; `None` when even one of them does not fit beside the labels.
fn chunks(series: TimeSeries, max_bytes: usize) -> Option<Vec<TimeSeries>> {
    let empty = TimeSeries {
        labels: series.labels,
        samples: Vec::new(),
        exemplars: Vec::new(),
    };
    let base = empty.encoded_len();
    let mut out = Vec::new();
    let mut current = empty.clone();
    let mut inner = base;
    let mut room = |item: usize, current: &mut TimeSeries, inner: &mut usize| -> Option<()> {
        if wrapped(*inner + item) > max_bytes {
            if current.samples.is_empty() && current.exemplars.is_empty() {
                return None;
            }
            out.push(std::mem::replace(current, empty.clone()));
            *inner = base;
            if wrapped(base + item) > max_bytes {
                return None;
            }
        }
        *inner += item;
        Some(())
    };
    for sample in series.samples {
        room(message::encoded_len(2, &sample), &mut current, &mut inner)?;
        current.samples.push(sample);
    }
    for exemplar in series.exemplars {
        room(message::encoded_len(3, &exemplar), &mut current, &mut inner)?;
        current.exemplars.push(exemplar);
    }
    if !current.samples.is_empty() || !current.exemplars.is_empty() {
        out.push(current);
    }
    Some(out)
}

/// A request as it goes on the wire: protobuf, then snappy's block format.
pub fn encode(request: &WriteRequest) -> Result<Bytes, String> {
    compression::compress(Some("snappy"), &request.encode_to_vec())
        .map(Bytes::from)
        .map_err(|e| format!("snappy: {e}"))
}
