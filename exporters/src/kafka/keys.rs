//! The record keys the exporter partitions by, computed as upstream computes them, so that a
//! topic written by ferrotel and by the Collector side by side puts the same trace or the
//! same resource in the same partition.

use xxhash_rust::xxh64::xxh64;

use ferrotel_pipeline::pdata::common::{any_value::Value, AnyValue, KeyValue};

/// Tags of upstream's attribute hash (`pdatautil.MapHash`): each marks what follows.
const KEY: u8 = 0xf4;
const EMPTY: u8 = 0xf5;
const BYTES: u8 = 0xf6;
const STRING: u8 = 0xf7;
const TRUE: u8 = 0xf8;
const FALSE: u8 = 0xf9;
const INT: u8 = 0xfa;
const DOUBLE: u8 = 0xfb;
const MAP_START: u8 = 0xfc;
const MAP_END: u8 = 0xfd;
const SLICE_START: u8 = 0xfe;
const SLICE_END: u8 = 0xff;
/// Appended before the second half of the 128-bit hash.
const SECOND_HALF: u8 = 0xf3;

/// The key of a trace's records: its ID as lowercase hex digits. `None` for an empty ID.
pub fn trace_key(trace_id: &[u8]) -> Option<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if trace_id.is_empty() {
        return None;
    }
    let mut key = Vec::with_capacity(trace_id.len() * 2);
    for b in trace_id {
        key.push(HEX[usize::from(b >> 4)]);
        key.push(HEX[usize::from(b & 0x0f)]);
    }
    Some(key)
}

/// The key of a resource's records: a 128-bit hash of its attributes, whatever their order
/// (16 zero bytes when it has none).
pub fn resource_key(attributes: &[KeyValue]) -> [u8; 16] {
    let mut key = [0u8; 16];
    if attributes.is_empty() {
        return key;
    }
    let mut buf = Vec::with_capacity(256);
    write_map(attributes, &mut buf);
    key[..8].copy_from_slice(&xxh64(&buf, 0).to_le_bytes());
    buf.push(SECOND_HALF);
    key[8..].copy_from_slice(&xxh64(&buf, 0).to_le_bytes());
    key
}

fn write_map(attributes: &[KeyValue], buf: &mut Vec<u8>) {
    let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        buf.push(KEY);
        buf.extend_from_slice(kv.key.as_bytes());
        write_value(kv.value.as_ref(), buf);
    }
}

fn write_value(value: Option<&AnyValue>, buf: &mut Vec<u8>) {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => {
            buf.push(STRING);
            buf.extend_from_slice(s.as_bytes());
        }
        Some(Value::BoolValue(b)) => buf.push(if *b { TRUE } else { FALSE }),
        Some(Value::IntValue(i)) => {
            buf.push(INT);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Some(Value::DoubleValue(d)) => {
            buf.push(DOUBLE);
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(Value::KvlistValue(map)) => {
            buf.push(MAP_START);
            write_map(&map.values, buf);
            buf.push(MAP_END);
        }
        Some(Value::ArrayValue(list)) => {
            buf.push(SLICE_START);
            for item in &list.values {
                write_value(Some(item), buf);
            }
            buf.push(SLICE_END);
        }
        Some(Value::BytesValue(bytes)) => {
            buf.push(BYTES);
            buf.extend_from_slice(bytes);
        }
        // A dictionary reference (profiles) or no value: empty.
        Some(Value::StringValueStrindex(_)) | None => buf.push(EMPTY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotel_pipeline::pdata::common::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn trace_keys_are_lowercase_hex() {
        let id = [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ];
        assert_eq!(
            trace_key(&id).as_deref(),
            Some(&b"4bf92f3577b34da6a3ce929d0e0e4736"[..])
        );
        assert_eq!(trace_key(&[]), None);
    }

    #[test]
    fn resource_keys_ignore_order_and_tell_values_apart() {
        let a = vec![
            kv("service.name", Value::StringValue("checkout".into())),
            kv("k8s.pod.uid", Value::IntValue(7)),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(resource_key(&a), resource_key(&b));
        assert_ne!(resource_key(&a), [0; 16]);
        assert_eq!(resource_key(&[]), [0; 16]);
        let others = [
            vec![kv("service.name", Value::StringValue("cart".into()))],
            vec![kv("service.name", Value::BytesValue(b"checkout".to_vec()))],
            vec![kv("x", Value::BoolValue(true))],
            vec![kv("x", Value::BoolValue(false))],
            vec![kv("x", Value::DoubleValue(7.0))],
            vec![kv(
                "x",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::IntValue(1)),
                    }],
                }),
            )],
            vec![kv(
                "x",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("y", Value::IntValue(1))],
                }),
            )],
        ];
        let mut keys: Vec<[u8; 16]> = others.iter().map(|attrs| resource_key(attrs)).collect();
        keys.push(resource_key(&a));
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            count,
            "two different attribute sets share a key"
        );
    }

    #[test]
    fn xxh64_is_the_standard_one() {
        assert_eq!(xxh64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
    }

    #[test]
    fn the_hash_input_follows_upstreams_layout() {
        // key "a" with string "b": KEY 'a' STRING 'b'.
        let mut buf = Vec::new();
        write_map(&[kv("a", Value::StringValue("b".into()))], &mut buf);
        assert_eq!(buf, [KEY, b'a', STRING, b'b']);
        let mut buf = Vec::new();
        write_value(
            Some(&AnyValue {
                value: Some(Value::IntValue(-1)),
            }),
            &mut buf,
        );
        assert_eq!(buf, [INT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }
}
