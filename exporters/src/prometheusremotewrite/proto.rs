//! The remote write 1.0 messages (Prometheus' `prompb`), only the fields this exporter sends.

/// One request: series with their labels and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// A series: its full label set, sorted by name, and its samples in timestamp order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_are_the_wire_protocols() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("a", "b")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 2,
                }],
                exemplars: vec![],
            }],
        };
        // WriteRequest.timeseries (1, len 21) > TimeSeries.labels (1, len 6) > Label.name (1)
        // "a", Label.value (2) "b"; TimeSeries.samples (2, len 11) > Sample.value (1, double)
        // 1.0, Sample.timestamp (2, varint) 2.
        let want: Vec<u8> = [
            &[
                0x0a, 21, 0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b', 0x12, 11, 0x09,
            ][..],
            &1.0f64.to_le_bytes()[..],
            &[0x10, 2][..],
        ]
        .concat();
        assert_eq!(request.encode_to_vec(), want);
        assert_eq!(WriteRequest::decode(want.as_slice()).unwrap(), request);

        let exemplar = Exemplar {
            labels: vec![Label::new("trace_id", "ab")],
            value: 0.5,
            timestamp: 7,
        };
        let bytes = exemplar.encode_to_vec();
        assert_eq!(bytes[0], 0x0a, "labels is field 1");
        let value_at = 2 + usize::from(bytes[1]);
        assert_eq!(bytes[value_at], 0x11, "value is field 2, a double");
        assert_eq!(bytes[value_at + 9], 0x18, "timestamp is field 3, a varint");
    }
}
