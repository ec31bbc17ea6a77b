//! Strict decoding of a configuration subtree into a component's typed config.
//!
//! A serde `Deserializer` over [`Value`]: unknown keys are errors (types derive
//! `deny_unknown_fields`), a null map means "all defaults" (as `grpc:` does upstream), and a
//! whole-field `${...}` reference decodes as its YAML type except into string fields, which
//! receive the referenced text unchanged.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::value::{Map, Value};

/// A decoding failure: where in the subtree, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Path segments below the decoded subtree, outermost first.
    pub path: Vec<String>,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path.join("::"), self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `value` into `T`, reporting the path of the first problem.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    let de = ValueDeserializer { value };
    serde_path_to_error::deserialize(de).map_err(|err| {
        let mut path: Vec<String> = Vec::new();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    if let Some(last) = path.last_mut() {
                        last.push_str(&format!("[{index}]"));
                    } else {
                        path.push(format!("[{index}]"));
                    }
                }
                serde_path_to_error::Segment::Map { key } => path.push(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => path.push(variant.clone()),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let message = tidy_message(&err.inner().0);
        // serde names an unknown field in the message; the path then already ends at it.
        if message.starts_with("unknown field") && !path.is_empty() {
            path.pop();
        }
        DecodeError { path, message }
    })
}

/// serde's messages quote with backticks and vary their list wording; the Collector's use
/// double quotes, and here every list of choices reads "expected one of a, b".
fn tidy_message(message: &str) -> String {
    for (prefix, noun) in [
        ("unknown field `", "unknown field"),
        ("unknown variant `", "invalid value"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((name, tail)) = rest.split_once('`') {
                let choices: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
                return if choices.is_empty() {
                    format!("{noun} \"{name}\" (this section takes no keys)")
                } else {
                    format!("{noun} \"{name}\", expected one of {}", choices.join(", "))
                };
            }
        }
    }
    message.replace('`', "\"")
}

/// The newtype name through which a field of no fixed type (upstream's `any`, such as an
/// attribute `value`) asks for its value as YAML typed it, even when it came whole from one
/// `${...}` reference: the Collector gives such fields the typed reading (`${env:PORT}` with
/// `8080` is an int, an empty expansion is null), and only string fields the text.
pub const TYPED_ANY: &str = "$ferrotel::TypedAny";

/// serde's error type for this deserializer.
#[derive(Debug, Clone)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Deserializes borrowed configuration values.
pub struct ValueDeserializer<'a> {
    pub value: &'a Value,
}

impl<'a> ValueDeserializer<'a> {
    fn invalid(&self, expected: &str) -> Error {
        Error(format!("expected {expected}, got {}", describe(self.value)))
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Seq(_) => "a list".to_string(),
        Value::Map(_) => "a map".to_string(),
        Value::Expanded { raw, .. } => format!("\"{raw}\""),
    }
}

macro_rules! deserialize_int {
    ($method:ident, $visit:ident, $ty:ty, $name:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.typed() {
                Value::Int(i) => match <$ty>::try_from(*i) {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(Error(format!("value {i} is out of range for {}", $name))),
                },
                Value::Float(f) if f.fract() == 0.0 && f.is_finite() => {
                    let i = *f as i64;
                    match <$ty>::try_from(i) {
                        Ok(n) => visitor.$visit(n),
                        Err(_) => Err(Error(format!("value {f} is out of range for {}", $name))),
                    }
                }
                Value::String(s) => match s.trim().parse::<$ty>() {
                    // Large integers that YAML could not hold as i64 arrive as text.
                    Ok(n) if s.chars().all(|c| c.is_ascii_digit()) => visitor.$visit(n),
                    _ => Err(self.invalid($name)),
                },
                _ => Err(self.invalid($name)),
            }
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for ValueDeserializer<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDeserializer::new(items)),
            Value::Map(map) => visitor.visit_map(MapDeserializer::new(map)),
            Value::Expanded { raw, .. } => visitor.visit_str(raw),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.invalid("a bool")),
        }
    }

    deserialize_int!(deserialize_i8, visit_i8, i8, "an int8");
    deserialize_int!(deserialize_i16, visit_i16, i16, "an int16");
    deserialize_int!(deserialize_i32, visit_i32, i32, "an int32");
    deserialize_int!(deserialize_i64, visit_i64, i64, "an int");
    deserialize_int!(deserialize_u8, visit_u8, u8, "a uint8");
    deserialize_int!(deserialize_u16, visit_u16, u16, "a uint16");
    deserialize_int!(deserialize_u32, visit_u32, u32, "a uint32");
    deserialize_int!(deserialize_u64, visit_u64, u64, "a uint64");

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Int(i) => visitor.visit_f64(*i as f64),
            _ => Err(self.invalid("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::String(s) => visitor.visit_str(s),
            Value::Expanded { raw, .. } => visitor.visit_str(raw),
            // Scalars written without quotes (`key: 12345`) are still meant as text.
            Value::Int(i) => visitor.visit_string(i.to_string()),
            Value::Float(f) => visitor.visit_string(f.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            _ => Err(self.invalid("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.invalid("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == TYPED_ANY {
            return visitor.visit_newtype_struct(ValueDeserializer {
                value: self.value.typed(),
            });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Seq(items) => visitor.visit_seq(SeqDeserializer::new(items)),
            Value::Null => visitor.visit_seq(SeqDeserializer::new(&[])),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value.typed() {
            Value::Map(map) => visitor.visit_map(MapDeserializer::new(map)),
            Value::Null => visitor.visit_map(MapDeserializer::empty()),
            _ => Err(self.invalid("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Expanded { raw, .. } => visitor.visit_enum(raw.as_str().into_deserializer()),
            Value::Map(map) if map.len() == 1 => match map.iter().next() {
                Some((key, value)) => visitor.visit_enum(EnumDeserializer { key, value }),
                None => Err(self.invalid("a string")),
            },
            _ => Err(self.invalid("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SeqDeserializer<'a> {
    iter: std::slice::Iter<'a, Value>,
}

impl<'a> SeqDeserializer<'a> {
    fn new(items: &'a [Value]) -> Self {
        SeqDeserializer { iter: items.iter() }
    }
}

impl<'de, 'a> SeqAccess<'de> for SeqDeserializer<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => seed.deserialize(ValueDeserializer { value }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDeserializer<'a> {
    iter: Option<indexmap::map::Iter<'a, String, Value>>,
    pending: Option<&'a Value>,
}

impl<'a> MapDeserializer<'a> {
    fn new(map: &'a Map) -> Self {
        MapDeserializer {
            iter: Some(map.iter()),
            pending: None,
        }
    }

    fn empty() -> Self {
        MapDeserializer {
            iter: None,
            pending: None,
        }
    }
}

impl<'de, 'a> MapAccess<'de> for MapDeserializer<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(iter) = self.iter.as_mut() else {
            return Ok(None);
        };
        match iter.next() {
            Some((key, value)) => {
                self.pending = Some(value);
                seed.deserialize(key.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.pending.take() {
            Some(value) => seed.deserialize(ValueDeserializer { value }),
            None => Err(Error("map value requested before its key".to_string())),
        }
    }
}

struct EnumDeserializer<'a> {
    key: &'a str,
    value: &'a Value,
}

impl<'de, 'a> EnumAccess<'de> for EnumDeserializer<'a> {
    type Error = Error;
    type Variant = ValueDeserializer<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(self.key.into_deserializer())?;
        Ok((variant, ValueDeserializer { value: self.value }))
    }
}

impl<'de, 'a> VariantAccess<'de> for ValueDeserializer<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// The keys a struct decodes (serde's `fields` of the struct), read without decoding anything.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    /// A deserializer that only notes the fields a struct asks for.
    struct Probe(Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for &mut Probe {
        type Error = Error;

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            self.0 = Some(fields);
            Err(Error("field names only".to_string()))
        }

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
            Err(Error("not a struct".to_string()))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

fn not_a_map() -> DecodeError {
    DecodeError {
        path: Vec::new(),
        message: "expected a map".to_string(),
    }
}

/// Decodes a section whose keys upstream takes from two structs squashed into one map (as
/// the Kafka components take their client settings): the keys `S` declares go to `S`, the
/// others to `R`. An unknown key is reported with the keys of both.
pub fn decode_squashed<S, R>(value: &Value) -> Result<(S, R), DecodeError>
where
    S: DeserializeOwned,
    R: DeserializeOwned,
{
    let shared = field_names::<S>();
    let map = match value {
        Value::Expanded { typed, .. } => typed.as_ref(),
        other => other,
    };
    let (mut own, mut rest) = (Map::new(), Map::new());
    match map {
        Value::Null => {}
        Value::Map(map) => {
            for (key, v) in map {
                let side = if shared.contains(&key.as_str()) {
                    &mut own
                } else {
                    &mut rest
                };
                side.insert(key.clone(), v.clone());
            }
        }
        // Not a map: the rest reports it, as a struct would.
        _ => return Err(decode::<R>(value).err().unwrap_or_else(not_a_map)),
    }
    let own = decode::<S>(&Value::Map(own))?;
    let rest = decode::<R>(&Value::Map(rest)).map_err(|mut e| {
        if e.path.is_empty() && e.message.starts_with("unknown field") {
            if e.message.contains(", expected one of ") {
                e.message.push_str(", ");
                e.message.push_str(&shared.join(", "));
            } else if let Some(at) = e.message.find(" (this section takes no keys)") {
                e.message.truncate(at);
                e.message.push_str(", expected one of ");
                e.message.push_str(&shared.join(", "));
            }
        }
        e
    })?;
    Ok((own, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Protocols {
        grpc: Option<Endpoint>,
        http: Option<Endpoint>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Endpoint {
        endpoint: String,
        port: u16,
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Root {
        protocols: Protocols,
    }

    fn yaml(text: &str) -> Value {
        Value::from_yaml_str(text).unwrap()
    }

    #[test]
    fn unknown_field_names_path_and_choices() {
        let err = decode::<Root>(&yaml("protocols:\n  htttp: {}\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocols: unknown field \"htttp\", expected one of grpc, http"
        );
    }

    #[test]
    fn null_section_means_defaults() {
        let root: Root = decode(&yaml("protocols:\n")).unwrap();
        assert_eq!(root.protocols, Protocols::default());
        // An optional section written with no value is absent.
        let root: Root = decode(&yaml("protocols:\n  grpc:\n")).unwrap();
        assert_eq!(root.protocols.grpc, None);
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = decode::<Root>(&yaml("protocols:\n  grpc:\n    port: abc\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocols::grpc::port: expected a uint16, got string \"abc\""
        );
        let err = decode::<Root>(&yaml("protocols:\n  grpc:\n    port: 70000\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocols::grpc::port: value 70000 is out of range for a uint16"
        );
        let err =
            decode::<Root>(&yaml("protocols:\n  grpc:\n    tags: [a, {b: 1}]\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocols::grpc::tags[1]: expected a string, got a map"
        );
    }

    #[test]
    fn expanded_values_keep_text_for_strings_and_type_for_numbers() {
        let mut map = Map::new();
        map.insert(
            "endpoint".into(),
            Value::Expanded {
                typed: Box::new(Value::Int(123)),
                raw: "0123".into(),
            },
        );
        map.insert(
            "port".into(),
            Value::Expanded {
                typed: Box::new(Value::Int(4317)),
                raw: "4317".into(),
            },
        );
        let ep: Endpoint = decode(&Value::Map(map)).unwrap();
        assert_eq!(ep.endpoint, "0123");
        assert_eq!(ep.port, 4317);
    }

    #[test]
    fn missing_required_field_is_reported() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Needs {
            endpoint: String,
        }
        let err = decode::<Needs>(&yaml("{}")).unwrap_err();
        assert_eq!(err.to_string(), "missing field \"endpoint\"");
    }

    #[test]
    fn enums_list_valid_values() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Verbosity {
            Basic,
            Normal,
            Detailed,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            verbosity: Verbosity,
        }
        let cfg: Cfg = decode(&yaml("verbosity: normal")).unwrap();
        assert_eq!(cfg.verbosity, Verbosity::Normal);
        let err = decode::<Cfg>(&yaml("verbosity: loud")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "verbosity: invalid value \"loud\", expected one of basic, normal, detailed"
        );
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Shared {
        brokers: Vec<String>,
        client_id: String,
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Own {
        group_id: String,
    }

    #[test]
    fn field_names_of_a_struct() {
        assert_eq!(field_names::<Shared>(), &["brokers", "client_id"]);
        assert!(field_names::<u32>().is_empty());
    }

    #[test]
    fn squashed_sections_share_one_map() {
        let value = Value::Map(
            [
                (
                    "brokers".to_string(),
                    Value::Seq(vec![Value::String("k:9092".into())]),
                ),
                ("group_id".to_string(), Value::String("g".into())),
            ]
            .into_iter()
            .collect(),
        );
        let (shared, own): (Shared, Own) = decode_squashed(&value).unwrap();
        assert_eq!(shared.brokers, vec!["k:9092".to_string()]);
        assert_eq!(own.group_id, "g");
        let (shared, own): (Shared, Own) = decode_squashed(&Value::Null).unwrap();
        assert_eq!((shared, own), (Shared::default(), Own::default()));
        let unknown = Value::Map([("topic_x".to_string(), Value::Null)].into_iter().collect());
        let err = decode_squashed::<Shared, Own>(&unknown).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown field \"topic_x\", expected one of group_id, brokers, client_id"
        );
        let err = decode_squashed::<Shared, Own>(&Value::Int(3)).unwrap_err();
        assert_eq!(err.to_string(), "expected a map, got int 3");
    }
}
