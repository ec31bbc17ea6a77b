#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use super::*;
use crate::component::ClientInfo;
use crate::config::decode::decode;
use crate::config::value::Value as ConfigTree;
use crate::pdata::common::{any_value::Value, ArrayValue, KeyValue, KeyValueList};

fn s(text: &str) -> Value {
    Value::StringValue(text.to_string())
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn configs(yaml: &str) -> Vec<ActionConfig> {
    decode(&ConfigTree::from_yaml_str(yaml).unwrap()).unwrap()
}

fn actions(yaml: &str) -> Actions {
    Actions::new(&configs(yaml)).unwrap()
}

fn error(yaml: &str) -> String {
    Actions::new(&configs(yaml)).unwrap_err().to_string()
}

fn run(yaml: &str, mut attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    actions(yaml).apply(&mut attributes, &ActionContext::default());
    attributes
}

fn run_with(yaml: &str, client: &ClientInfo, mut attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    actions(yaml).apply(&mut attributes, &ActionContext::new(Some(client)));
    attributes
}

fn client() -> ClientInfo {
    ClientInfo {
        addr: Some("192.168.1.1:4317".parse::<SocketAddr>().unwrap()),
        metadata: vec![
            ("source_single_val".into(), "single_val".into()),
            ("source_multiple_val".into(), "first_val".into()),
            ("source_multiple_val".into(), "second_val".into()),
            ("x-tenant".into(), "acme".into()),
        ],
    }
}

#[test]
fn values_take_their_yaml_type() {
    let list = configs(
        "- {key: a, value: text, action: insert}\n\
         - {key: b, value: 123, action: insert}\n\
         - {key: c, value: 1.5, action: insert}\n\
         - {key: d, value: true, action: insert}\n\
         - {key: e, value: '123', action: insert}\n\
         - {key: f, value: [1, two, null], action: insert}\n\
         - {key: g, value: {k: v, n: 2}, action: insert}",
    );
    let got = run(
        "- {key: a, value: text, action: insert}\n\
         - {key: b, value: 123, action: insert}\n\
         - {key: c, value: 1.5, action: insert}\n\
         - {key: d, value: true, action: insert}\n\
         - {key: e, value: '123', action: insert}\n\
         - {key: f, value: [1, two, null], action: insert}\n\
         - {key: g, value: {k: v, n: 2}, action: insert}",
        vec![],
    );
    assert_eq!(list.len(), 7);
    assert_eq!(
        got,
        vec![
            kv("a", s("text")),
            kv("b", Value::IntValue(123)),
            kv("c", Value::DoubleValue(1.5)),
            kv("d", Value::BoolValue(true)),
            kv("e", s("123")),
            kv(
                "f",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::IntValue(1))
                        },
                        AnyValue {
                            value: Some(s("two"))
                        },
                        AnyValue::default(),
                    ]
                })
            ),
            kv(
                "g",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", s("v")), kv("n", Value::IntValue(2))]
                })
            ),
        ]
    );
}

#[test]
fn a_whole_reference_value_is_typed_and_an_empty_one_is_unset() {
    let typed = ConfigTree::Expanded {
        typed: Box::new(ConfigTree::Int(8080)),
        raw: "8080".into(),
    };
    let empty = ConfigTree::Expanded {
        typed: Box::new(ConfigTree::Null),
        raw: String::new(),
    };
    let action = |value: ConfigTree| {
        let mut map = crate::config::value::Map::new();
        map.insert("key".into(), ConfigTree::String("port".into()));
        map.insert("value".into(), value);
        map.insert("action".into(), ConfigTree::String("insert".into()));
        ConfigTree::Seq(vec![ConfigTree::Map(map)])
    };
    let list: Vec<ActionConfig> = decode(&action(typed)).unwrap();
    let mut attributes = Vec::new();
    Actions::new(&list)
        .unwrap()
        .apply(&mut attributes, &ActionContext::default());
    assert_eq!(attributes, vec![kv("port", Value::IntValue(8080))]);

    // Unset environment variable: no value, so the action needs another source.
    let list: Vec<ActionConfig> = decode(&action(empty)).unwrap();
    assert!(list[0].value.is_none());
    assert_eq!(
        Actions::new(&list).unwrap_err().to_string(),
        "error with key \"port\" (0-th action): error creating AttrProc. Either field \"value\", \"from_attribute\", \"from_context\", or \"default_value\" must be specified"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let err = decode::<Vec<ActionConfig>>(
        &ConfigTree::from_yaml_str("- {key: a, valeu: 1, action: insert}").unwrap(),
    )
    .unwrap_err();
    assert!(err.message.contains("unknown field \"valeu\""), "{err}");
}

#[test]
fn insert_only_adds_missing_keys() {
    let yaml = "- {key: attribute1, value: 123, action: insert}\n\
                - {key: string key, from_attribute: anotherkey, action: insert}";
    assert_eq!(
        run(yaml, vec![]),
        vec![kv("attribute1", Value::IntValue(123))]
    );
    assert_eq!(
        run(
            yaml,
            vec![kv("attribute1", s("kept")), kv("anotherkey", s("bob"))]
        ),
        vec![
            kv("attribute1", s("kept")),
            kv("anotherkey", s("bob")),
            kv("string key", s("bob")),
        ]
    );
}

#[test]
fn update_only_changes_present_keys() {
    let yaml = "- {key: boo, from_attribute: foo, action: update}\n\
                - {key: db.secret, value: redacted, action: update}";
    assert_eq!(run(yaml, vec![kv("foo", s("x"))]), vec![kv("foo", s("x"))]);
    assert_eq!(
        run(
            yaml,
            vec![
                kv("boo", s("old")),
                kv("foo", Value::IntValue(7)),
                kv("db.secret", s("pw"))
            ]
        ),
        vec![
            kv("boo", Value::IntValue(7)),
            kv("foo", Value::IntValue(7)),
            kv("db.secret", s("redacted")),
        ]
    );
    // No source value: nothing changes.
    assert_eq!(
        run(yaml, vec![kv("boo", s("old"))]),
        vec![kv("boo", s("old"))]
    );
}

#[test]
fn upsert_sets_in_place_or_appends() {
    let yaml = "- {key: region, value: planet-earth, action: upsert}\n\
                - {key: new_user_key, from_attribute: user_key, action: upsert}";
    assert_eq!(
        run(yaml, vec![kv("region", s("mars")), kv("a", s("b"))]),
        vec![kv("region", s("planet-earth")), kv("a", s("b"))]
    );
    assert_eq!(
        run(yaml, vec![kv("user_key", Value::BoolValue(true))]),
        vec![
            kv("user_key", Value::BoolValue(true)),
            kv("region", s("planet-earth")),
            kv("new_user_key", Value::BoolValue(true)),
        ]
    );
}

#[test]
fn actions_are_case_insensitive() {
    let yaml = "- {key: one, action: Delete}\n\
                - {key: two, value: 123, action: INSERT}\n\
                - {key: three, from_attribute: two, action: upDaTE}\n\
                - {key: five, from_attribute: two, action: upsert}";
    assert_eq!(
        run(yaml, vec![kv("one", s("x")), kv("three", s("y"))]),
        vec![
            kv("three", Value::IntValue(123)),
            kv("two", Value::IntValue(123)),
            kv("five", Value::IntValue(123)),
        ]
    );
}

#[test]
fn from_context_reads_client_metadata_and_address() {
    let c = client();
    let cases = [
        ("source", None),
        ("source_single_val", Some("single_val")),
        ("source_multiple_val", Some("first_val;second_val")),
        ("metadata.source_single_val", Some("single_val")),
        ("metadata.SOURCE_SINGLE_VAL", Some("single_val")),
        ("metadata.x-tenant", Some("acme")),
        ("client.address", Some("192.168.1.1")),
        ("auth.subject", None),
        ("auth.source_single_val", None),
    ];
    for (source, want) in cases {
        let yaml = format!("- {{key: dest, from_context: {source}, action: insert}}");
        let got = run_with(&yaml, &c, vec![]);
        let want: Vec<KeyValue> = want.into_iter().map(|w| kv("dest", s(w))).collect();
        assert_eq!(got, want, "{source}");
    }
}

#[test]
fn from_context_without_a_client() {
    // Upstream reads an unknown peer address as empty text, and no metadata as absent.
    assert_eq!(
        run(
            "- {key: ip, from_context: client.address, action: upsert}",
            vec![]
        ),
        vec![kv("ip", s(""))]
    );
    assert_eq!(
        run(
            "- {key: t, from_context: metadata.tenant, action: upsert}",
            vec![]
        ),
        vec![]
    );
    let v4_mapped = ClientInfo {
        addr: Some("[::ffff:10.1.2.3]:4317".parse().unwrap()),
        metadata: vec![],
    };
    assert_eq!(
        context_value(Some(&v4_mapped), "client.address").as_deref(),
        Some("10.1.2.3")
    );
    let v6 = ClientInfo {
        addr: Some("[2001:db8::1]:4317".parse().unwrap()),
        metadata: vec![],
    };
    assert_eq!(
        context_value(Some(&v6), "client.address").as_deref(),
        Some("2001:db8::1")
    );
}

#[test]
fn default_value_fills_in_when_the_source_gives_nothing() {
    let yaml =
        "- {key: env, from_attribute: environment, default_value: production, action: insert}";
    assert_eq!(run(yaml, vec![]), vec![kv("env", s("production"))]);
    assert_eq!(
        run(yaml, vec![kv("environment", s("staging"))]),
        vec![kv("environment", s("staging")), kv("env", s("staging"))]
    );
    assert_eq!(
        run(yaml, vec![kv("env", s("existing"))]),
        vec![kv("env", s("existing"))]
    );

    let update = "- {key: service.namespace, from_attribute: namespace, default_value: default, action: update}";
    assert_eq!(run(update, vec![]), vec![]);
    assert_eq!(
        run(update, vec![kv("service.namespace", s("old"))]),
        vec![kv("service.namespace", s("default"))]
    );

    let upsert = "- {key: region, value: us-west-2, default_value: us-east-1, action: upsert}";
    assert_eq!(run(upsert, vec![]), vec![kv("region", s("us-west-2"))]);

    let typed = "- {key: n, from_attribute: missing, default_value: 42, action: insert}\n\
                 - {key: b, from_attribute: missing, default_value: true, action: insert}\n\
                 - {key: d, from_attribute: missing, default_value: 2.5, action: insert}";
    assert_eq!(
        run(typed, vec![]),
        vec![
            kv("n", Value::IntValue(42)),
            kv("b", Value::BoolValue(true)),
            kv("d", Value::DoubleValue(2.5)),
        ]
    );

    let context = "- {key: tenant_id, from_context: metadata.tenant, default_value: default-tenant, action: insert}\n\
                   - {key: region, from_context: metadata.x-tenant, default_value: none, action: insert}";
    assert_eq!(
        run_with(context, &client(), vec![]),
        vec![
            kv("tenant_id", s("default-tenant")),
            kv("region", s("acme"))
        ]
    );

    // Alone it is enough of a source.
    assert_eq!(
        run("- {key: only, default_value: d, action: upsert}", vec![]),
        vec![kv("only", s("d"))]
    );
}

#[test]
fn delete_by_key_and_by_pattern() {
    let attributes = vec![
        kv("credit_card", s("1234")),
        kv("user.password", s("x")),
        kv("db.password", s("y")),
        kv("keep", s("z")),
    ];
    assert_eq!(
        run("- {key: credit_card, action: delete}", attributes.clone()),
        attributes[1..].to_vec()
    );
    assert_eq!(
        run("- {pattern: password$, action: delete}", attributes.clone()),
        vec![kv("credit_card", s("1234")), kv("keep", s("z"))]
    );
    assert_eq!(
        run(
            "- {key: credit_card, pattern: ^user\\., action: DELETE}",
            attributes.clone()
        ),
        vec![kv("db.password", s("y")), kv("keep", s("z"))]
    );
    assert_eq!(
        run("- {key: absent, action: delete}", attributes.clone()),
        attributes
    );
}

const SHA256_FOO: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const SHA256_EMAIL: &str = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f";
/// Of the 8 little-endian bytes of 10.
const SHA256_INT_10: &str = "a111f275cc2e7588000001d300a31e76336d15b9d314cd1a1d8f3d3556975eed";
/// Of the 8 little-endian bytes of -1.
const SHA256_INT_MINUS_1: &str = "12a3ae445661ce5dee78d0650d33362dec29c4f82af05e7e57fb595bbbacf0ca";
/// Of the 8 little-endian bytes of the bits of 99.1.
const SHA256_DOUBLE_99_1: &str = "05fabd78b01be9692863cb0985f600c99da82979af18db5c55173c2a30adb924";
/// Of the 8 little-endian bytes of the bits of 2.4.
const SHA256_DOUBLE_2_4: &str = "df3022be03461368aa299f2f30d440fd3ca45c9b62af40733f10296a53d42859";
const SHA256_BYTE_1: &str = "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a";
const SHA256_BYTE_0: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

#[test]
fn hash_uses_sha256_of_upstreams_bytes() {
    let hashed = |value: Value| {
        let got = run(
            "- {key: k, action: hash}",
            vec![kv("k", value), kv("other", s("foo"))],
        );
        assert_eq!(got[1], kv("other", s("foo")), "other keys untouched");
        match got[0].value.as_ref().and_then(|v| v.value.clone()) {
            Some(Value::StringValue(text)) => text,
            other => panic!("not a string: {other:?}"),
        }
    };
    assert_eq!(hashed(s("foo")), SHA256_FOO);
    assert_eq!(hashed(s("john.doe@example.com")), SHA256_EMAIL);
    assert_eq!(hashed(Value::IntValue(10)), SHA256_INT_10);
    assert_eq!(hashed(Value::IntValue(-1)), SHA256_INT_MINUS_1);
    assert_eq!(hashed(Value::DoubleValue(99.1)), SHA256_DOUBLE_99_1);
    assert_eq!(hashed(Value::DoubleValue(2.4)), SHA256_DOUBLE_2_4);
    assert_eq!(hashed(Value::BoolValue(true)), SHA256_BYTE_1);
    assert_eq!(hashed(Value::BoolValue(false)), SHA256_BYTE_0);
    // Upstream hashes only those four types: bytes, lists, maps, and the empty string
    // become the empty string.
    assert_eq!(hashed(Value::BytesValue(vec![1, 2, 3])), "");
    assert_eq!(hashed(Value::BytesValue(b"foo".to_vec())), "");
    assert_eq!(hashed(s("")), "");
    assert_eq!(hashed(Value::ArrayValue(ArrayValue { values: vec![] })), "");
    assert_eq!(hash_value(None), "");
}

#[test]
fn hash_by_pattern() {
    let got = run(
        "- {pattern: ^user\\., action: hash}",
        vec![
            kv("user.email", s("john.doe@example.com")),
            kv("user.id", Value::IntValue(10)),
            kv("other", s("foo")),
        ],
    );
    assert_eq!(
        got,
        vec![
            kv("user.email", s(SHA256_EMAIL)),
            kv("user.id", s(SHA256_INT_10)),
            kv("other", s("foo")),
        ]
    );
    // A key the pattern also matches is hashed twice, as upstream does.
    let twice = run(
        "- {key: user.email, pattern: email, action: hash}",
        vec![kv("user.email", s("foo"))],
    );
    assert_eq!(
        twice,
        vec![kv(
            "user.email",
            s(&hash_value(Some(&AnyValue {
                value: Some(s(SHA256_FOO))
            })))
        )]
    );
}

#[test]
fn extract_named_groups_from_strings() {
    let yaml = "- key: http.url\n  pattern: ^(?P<http_protocol>.*):\\/\\/(?P<http_domain>.*)\\/(?P<http_path>.*)(\\?|\\&)(?P<http_query_params>.*)\n  action: extract";
    let yaml = yaml.replace("(\\?|\\&)", "(?:\\?|\\&)");
    let url = "http://example.com/path?queryParam1=value1,queryParam2=value2";
    assert_eq!(
        run(
            &yaml,
            vec![kv("http.url", s(url)), kv("http_path", s("old"))]
        ),
        vec![
            kv("http.url", s(url)),
            kv("http_path", s("path")),
            kv("http_protocol", s("http")),
            kv("http_domain", s("example.com")),
            kv(
                "http_query_params",
                s("queryParam1=value1,queryParam2=value2")
            ),
        ]
    );
    // No match, or not a string: nothing happens.
    assert_eq!(
        run(&yaml, vec![kv("http.url", s("not a url"))]),
        vec![kv("http.url", s("not a url"))]
    );
    assert_eq!(
        run(&yaml, vec![kv("http.url", Value::IntValue(1))]),
        vec![kv("http.url", Value::IntValue(1))]
    );
    // A group that takes no part in the match gives the empty string.
    assert_eq!(
        run(
            "- {key: v, pattern: '^(?P<a>x)?(?P<b>y)$', action: extract}",
            vec![kv("v", s("y"))]
        ),
        vec![kv("v", s("y")), kv("a", s("")), kv("b", s("y"))]
    );
}

#[test]
fn convert_changes_types_or_leaves_the_value() {
    let yaml = "- {key: to.int, action: convert, converted_type: int}\n\
                - {key: to.double, action: convert, converted_type: double}\n\
                - {key: to.string, action: convert, converted_type: string}";
    let one = |key: &str, value: Value| {
        run(yaml, vec![kv(key, value)])
            .pop()
            .and_then(|kv| kv.value)
            .and_then(|v| v.value)
    };
    let cases = [
        ("to.int", s("123"), Value::IntValue(123)),
        ("to.int", s("-42"), Value::IntValue(-42)),
        ("to.int", s("+7"), Value::IntValue(7)),
        ("to.int", s("int-10"), s("int-10")),
        ("to.int", s("1.5"), s("1.5")),
        (
            "to.int",
            s("99999999999999999999"),
            s("99999999999999999999"),
        ),
        ("to.int", Value::DoubleValue(3.99), Value::IntValue(3)),
        ("to.int", Value::DoubleValue(-3.99), Value::IntValue(-3)),
        ("to.int", Value::BoolValue(true), Value::IntValue(1)),
        ("to.int", Value::BoolValue(false), Value::IntValue(0)),
        ("to.int", Value::IntValue(5), Value::IntValue(5)),
        (
            "to.int",
            Value::BytesValue(vec![1]),
            Value::BytesValue(vec![1]),
        ),
        ("to.double", s("3.141e2"), Value::DoubleValue(314.1)),
        ("to.double", s("2"), Value::DoubleValue(2.0)),
        ("to.double", s("abc"), s("abc")),
        ("to.double", s("1e400"), s("1e400")),
        ("to.double", Value::IntValue(2), Value::DoubleValue(2.0)),
        ("to.double", Value::BoolValue(true), Value::DoubleValue(1.0)),
        ("to.string", Value::DoubleValue(99.1), s("99.1")),
        ("to.string", Value::IntValue(-5), s("-5")),
        ("to.string", Value::BoolValue(false), s("false")),
        ("to.string", Value::DoubleValue(1e21), s("1e+21")),
        ("to.string", Value::BytesValue(b"hi".to_vec()), s("aGk=")),
        ("to.string", s("same"), s("same")),
        (
            "to.string",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("b", Value::IntValue(1)), kv("a", s("x"))],
            }),
            s(r#"{"a":"x","b":1}"#),
        ),
    ];
    for (key, input, want) in cases {
        assert_eq!(one(key, input.clone()), Some(want), "{key} {input:?}");
    }
    assert!(matches!(
        one("to.double", s("inf")),
        Some(Value::DoubleValue(f)) if f.is_infinite()
    ));
    // An absent key stays absent.
    assert_eq!(run(yaml, vec![]), vec![]);
}

#[test]
fn actions_run_in_order() {
    let yaml = "- {key: operation, value: default, action: insert}\n\
                - {key: svc.operation, from_attribute: operation, action: upsert}\n\
                - {key: operation, action: delete}";
    let cases = [
        (
            vec![
                kv("timeout", Value::IntValue(10)),
                kv("svc.operation", s("addition")),
                kv("operation", s("addition")),
            ],
            vec![
                kv("timeout", Value::IntValue(10)),
                kv("svc.operation", s("addition")),
            ],
        ),
        (
            vec![
                kv("operation", s("subtract")),
                kv("math_value", Value::IntValue(123)),
            ],
            vec![
                kv("math_value", Value::IntValue(123)),
                kv("svc.operation", s("subtract")),
            ],
        ),
        (
            vec![
                kv("svc.operation", s("division")),
                kv("timeout", Value::IntValue(3)),
            ],
            vec![
                kv("svc.operation", s("default")),
                kv("timeout", Value::IntValue(3)),
            ],
        ),
    ];
    for (input, want) in cases {
        assert_eq!(run(yaml, input), want);
    }
}

#[test]
fn every_configuration_error_is_upstreams() {
    let cases = [
        (
            "- {key: one, action: delete}\n- {key: '', value: 123, action: upsert}",
            r#"error creating AttrProc due to missing required field "key" at the 1-th action"#,
        ),
        (
            "- {value: 123, action: insert}",
            r#"error creating AttrProc due to missing required field "key" at the 0-th action"#,
        ),
        (
            "- {action: delete}",
            r#"error creating AttrProc due to missing required field (at least one of "key" and "pattern" have to be used) at the 0-th action"#,
        ),
        (
            "- {action: HASH}",
            r#"error creating AttrProc due to missing required field (at least one of "key" and "pattern" have to be used) at the 0-th action"#,
        ),
        (
            "- {key: invalid, action: invalid}",
            r#"error with key "invalid" (0-th action): error creating AttrProc due to unsupported action "invalid""#,
        ),
        (
            "- {key: k}",
            r#"error with key "k" (0-th action): error creating AttrProc due to unsupported action """#,
        ),
        (
            "- {key: MissingValueFromAttributes, action: insert}",
            r#"error with key "MissingValueFromAttributes" (0-th action): error creating AttrProc. Either field "value", "from_attribute", "from_context", or "default_value" must be specified"#,
        ),
        (
            "- {key: BothSet, value: 123, from_attribute: aa, action: upsert}",
            r#"error with key "BothSet" (0-th action): error creating AttrProc due to multiple value sources being set"#,
        ),
        (
            "- {key: k, from_context: a, from_attribute: aa, action: update}",
            r#"error with key "k" (0-th action): error creating AttrProc due to multiple value sources being set"#,
        ),
        (
            "- {key: key, pattern: '(?P<operation_website>.*?)$', from_attribute: aa, action: insert}",
            r#"error with key "key" (0-th action): error creating AttrProc. Action "insert" does not use the "pattern" field. This must not be specified"#,
        ),
        (
            "- {key: key, value: 1, converted_type: int, action: upsert}",
            r#"error with key "key" (0-th action): error creating AttrProc. Action "upsert" does not use the "converted_type" field. This must not be specified"#,
        ),
        (
            "- {key: aa, action: extract}",
            r#"error with key "aa" (0-th action): error creating AttrProc due to missing required field "pattern" for action "extract""#,
        ),
        (
            "- {key: Key, pattern: '(?P<operation_website>.*?)$', value: value, action: extract}",
            r#"error with key "Key" (0-th action): error creating AttrProc. Action "extract" does not use a value source field. These must not be specified"#,
        ),
        (
            "- {key: key, pattern: '(?P<operation_website>.*?)$', from_attribute: aa, action: extract}",
            r#"error with key "key" (0-th action): error creating AttrProc. Action "extract" does not use a value source field. These must not be specified"#,
        ),
        (
            "- {key: key, pattern: '(?P<a>.*)', converted_type: int, action: extract}",
            r#"error with key "key" (0-th action): error creating AttrProc. Action "extract" does not use the "converted_type" field. This must not be specified"#,
        ),
        (
            "- {key: aa, pattern: '(?P<invalid.regex>.*?)$', action: extract}",
            r#"error with key "aa" (0-th action): error creating AttrProc. Field "pattern" has invalid pattern: "(?P<invalid.regex>.*?)$""#,
        ),
        (
            "- {key: aa, pattern: '(unclosed', action: extract}",
            r#"error with key "aa" (0-th action): error creating AttrProc. Field "pattern" has invalid pattern: "(unclosed""#,
        ),
        (
            "- {key: aa, pattern: '.*$', action: extract}",
            r#"error with key "aa" (0-th action): error creating AttrProc. Field "pattern" contains no named matcher groups"#,
        ),
        (
            "- {key: aa, pattern: '^\\/api\\/v1\\/document\\/(?P<new_user_key>.*)\\/update\\/(.*)$', action: extract}",
            r#"error with key "aa" (0-th action): error creating AttrProc. Field "pattern" contains at least one unnamed matcher group"#,
        ),
        (
            "- {key: ab, value: 1, action: delete}",
            r#"error with key "ab" (0-th action): error creating AttrProc. Action "delete" does not use "value" or "from_attribute" field. These must not be specified"#,
        ),
        (
            "- {key: ab, from_attribute: x, action: hash}",
            r#"error with key "ab" (0-th action): error creating AttrProc. Action "hash" does not use "value" or "from_attribute" field. These must not be specified"#,
        ),
        (
            "- {key: ab, pattern: '[', action: delete}",
            r#"error with key "ab" (0-th action): error creating AttrProc. Field "pattern" has invalid pattern: "[""#,
        ),
        (
            "- {key: ab, converted_type: int, action: hash}",
            r#"error with key "ab" (0-th action): error creating AttrProc. Action "hash" does not use the "converted_type" field. This must not be specified"#,
        ),
        (
            "- {key: http.status_code, converted_type: array, action: convert}",
            r#"error with key "http.status_code" (0-th action): error creating AttrProc due to invalid value "array" in field "converted_type" for action "convert""#,
        ),
        (
            "- {key: c, action: convert}",
            r#"error with key "c" (0-th action): error creating AttrProc due to missing required field "converted_type" for action "convert""#,
        ),
        (
            "- {key: c, value: 1, converted_type: int, action: convert}",
            r#"error with key "c" (0-th action): error creating AttrProc. Action "convert" does not use value sources or "pattern" field. These must not be specified"#,
        ),
        (
            "- {key: c, pattern: x, converted_type: int, action: convert}",
            r#"error with key "c" (0-th action): error creating AttrProc. Action "convert" does not use value sources or "pattern" field. These must not be specified"#,
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(error(yaml), want, "{yaml}");
    }
}

#[test]
fn checks_stop_at_the_first_bad_action() {
    assert_eq!(
        error(
            "- {key: a, value: 1, action: insert}\n- {key: b, action: insert}\n- {action: insert}"
        ),
        r#"error with key "b" (1-th action): error creating AttrProc. Either field "value", "from_attribute", "from_context", or "default_value" must be specified"#
    );
}

#[test]
fn delete_and_hash_ignore_from_context_and_default_value() {
    // Upstream does not refuse these for delete and hash; they have no effect.
    let got = run(
        "- {key: a, from_context: x, default_value: y, action: delete}",
        vec![kv("a", s("1"))],
    );
    assert_eq!(got, vec![]);
}
