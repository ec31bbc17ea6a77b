//! Series identity: a 128-bit keyed hash of everything that names a series.
//!
//! Why a hash and not the identity itself: keeping a copy of every resource, scope and
//! attribute list per series would cost far more memory than the state it guards. Why 128
//! bits and keyed: two SipHash-1-3 hashers with independent random keys (chosen per
//! converter) give a 128-bit value that a sender cannot steer, so two series merge only by
//! chance, about n²/2¹²⁹ for n series: never in practice.
//!
//! Attribute lists are hashed without regard to order (the same attributes in another
//! order are the same series) and without allocating: every key-value pair is hashed on its
//! own to 128 bits and the results are added, which is commutative; the count goes in too.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use crate::pdata::resource::Resource;

/// Two hashers fed the same bytes: one 128-bit digest.
#[derive(Clone)]
pub(crate) struct Hasher128 {
    a: DefaultHasher,
    b: DefaultHasher,
}

impl Hasher128 {
    pub(crate) fn finish128(&self) -> u128 {
        (u128::from(self.a.finish()) << 64) | u128::from(self.b.finish())
    }

    pub(crate) fn write_str(&mut self, s: &str) {
        // Length first, so that ("ab", "c") and ("a", "bc") differ.
        self.write_usize(s.len());
        self.write(s.as_bytes());
    }
}

impl Hasher for Hasher128 {
    fn write(&mut self, bytes: &[u8]) {
        self.a.write(bytes);
        self.b.write(bytes);
    }

    fn finish(&self) -> u64 {
        self.a.finish() ^ self.b.finish()
    }
}

/// The random keys of one converter.
pub(crate) struct IdentityKeys {
    a: RandomState,
    b: RandomState,
}

/// What kind of point a series holds; part of its identity (an int sum that turns into a
/// double sum is another series, as upstream counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointKind {
    IntSum = 1,
    DoubleSum = 2,
    Histogram = 3,
    Exponential = 4,
}

impl IdentityKeys {
    pub(crate) fn new() -> Self {
        IdentityKeys {
            a: RandomState::new(),
            b: RandomState::new(),
        }
    }

    pub(crate) fn hasher(&self) -> Hasher128 {
        Hasher128 {
            a: self.a.build_hasher(),
            b: self.b.build_hasher(),
        }
    }

    /// The resource and scope part, computed once per scope.
    pub(crate) fn scope(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
    ) -> u128 {
        let mut h = self.hasher();
        let resource_attrs = resource.map_or(&[][..], |r| r.attributes.as_slice());
        h.write_u128(self.attributes(resource_attrs));
        let (name, version, attrs) = scope.map_or(("", "", &[][..]), |s| {
            (s.name.as_str(), s.version.as_str(), s.attributes.as_slice())
        });
        h.write_str(name);
        h.write_str(version);
        h.write_u128(self.attributes(attrs));
        h.finish128()
    }

    /// The hasher state after the scope and the metric's own identity; cloned per point.
    pub(crate) fn metric(&self, scope: u128, name: &str, unit: &str, monotonic: bool) -> Hasher128 {
        let mut h = self.hasher();
        h.write_u128(scope);
        h.write_str(name);
        h.write_str(unit);
        h.write_u8(u8::from(monotonic));
        h
    }

    /// The identity of one point's series under a metric.
    pub(crate) fn series(&self, metric: &Hasher128, kind: PointKind, attrs: &[KeyValue]) -> u128 {
        let mut h = metric.clone();
        h.write_u8(kind as u8);
        h.write_u128(self.attributes(attrs));
        h.finish128()
    }

    /// An order-independent digest of an attribute list.
    pub(crate) fn attributes(&self, attrs: &[KeyValue]) -> u128 {
        let mut sum: u128 = 0;
        for kv in attrs {
            let mut h = self.hasher();
            h.write_str(&kv.key);
            h.write_i32(kv.key_strindex);
            self.value(&mut h, kv.value.as_ref());
            sum = sum.wrapping_add(h.finish128());
        }
        // The count keeps a list apart from a longer one whose extra digests sum to zero.
        sum.wrapping_add(attrs.len() as u128)
    }

    fn value(&self, h: &mut Hasher128, value: Option<&AnyValue>) {
        let Some(value) = value.and_then(|v| v.value.as_ref()) else {
            h.write_u8(0);
            return;
        };
        match value {
            any_value::Value::StringValue(s) => {
                h.write_u8(1);
                h.write_str(s);
            }
            any_value::Value::BoolValue(b) => {
                h.write_u8(2);
                h.write_u8(u8::from(*b));
            }
            any_value::Value::IntValue(i) => {
                h.write_u8(3);
                h.write_i64(*i);
            }
            any_value::Value::DoubleValue(d) => {
                h.write_u8(4);
                h.write_u64(d.to_bits());
            }
            any_value::Value::ArrayValue(array) => {
                h.write_u8(5);
                h.write_usize(array.values.len());
                for item in &array.values {
                    self.value(h, Some(item));
                }
            }
            any_value::Value::KvlistValue(list) => {
                h.write_u8(6);
                h.write_u128(self.attributes(&list.values));
            }
            any_value::Value::BytesValue(bytes) => {
                h.write_u8(7);
                h.write_usize(bytes.len());
                h.write(bytes);
            }
            any_value::Value::StringValueStrindex(i) => {
                h.write_u8(8);
                h.write_i32(*i);
            }
        }
    }
}

/// Series keys are uniform hashes already: the map uses their bits as they are instead of
/// hashing them again.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, i: u128) {
        self.0 = (i as u64) ^ ((i >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type KeyBuildHasher = BuildHasherDefault<KeyHasher>;
