//! Builds the effective configuration from `--config` URIs and `--set` flags, as the Collector's
//! resolver does: each source is read in order and deep-merged over the previous ones, then
//! `${...}` references are expanded and `$$` unescaped.
//!
//! Sources: `file:PATH` (or a bare path), `env:NAME` (YAML held in an environment variable) and
//! `yaml:INLINE`. In any source a key written `a::b::c` stands for nested maps, which is how
//! `yaml:` and `--set` address deep fields.

use std::collections::HashMap;

use super::expand::{
    expand, io_error_message, is_valid_scheme, lookup_env, ExpandError, ExpandErrorKind, Note,
    SUPPORTED_SCHEMES,
};
use super::value::{Map, Value};

/// The most `--config` and `--set` values accepted together.
pub const MAX_CONFIG_SOURCES: usize = 100;

/// The key delimiter used by `yaml:` URIs and `--set`.
pub const KEY_DELIMITER: &str = "::";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("at least one config flag must be provided")]
    NoConfig,
    #[error("too many config sources: {count} given, at most {MAX_CONFIG_SOURCES} are allowed")]
    TooManySources { count: usize },
    #[error("invalid value {flag:?} for flag --set: missing equal sign")]
    MissingEqualSign { flag: String },
    #[error("invalid uri: {uri:?}")]
    InvalidUri { uri: String },
    #[error("unsupported scheme on URI {uri:?} (supported schemes: {SUPPORTED_SCHEMES})")]
    UnsupportedScheme { uri: String },
    #[error("the {scheme:?} scheme is not supported (config URI {uri:?}): fetching configuration over the network is not supported, download it and pass the file's path")]
    RemoteNotSupported { scheme: String, uri: String },
    #[error("cannot read config file {path:?}: {message}")]
    ReadFile { path: String, message: String },
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: the top level must be a map, found {kind}")]
    NotAMap {
        source_name: String,
        kind: &'static str,
    },
    #[error("{source_name}: {kind}")]
    InvalidSource {
        source_name: String,
        kind: ExpandErrorKind,
    },
    #[error("{}{error}", label.as_deref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Expand {
        /// The label of the source that set the failing field, when known.
        label: Option<String>,
        error: ExpandError,
    },
}

/// The effective configuration with notes to log and a record of which source set each path.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub root: Value,
    pub notes: Vec<Note>,
    origins: OriginNode,
    labels: Vec<String>,
}

impl Resolved {
    /// The label of the last source that set `path` (map keys from the top), or when no source
    /// set it, of the last one that set its deepest set ancestor: the file's path for files,
    /// `env:NAME`, `yaml` or `--set`.
    pub fn origin(&self, path: &[&str]) -> Option<&str> {
        let mut node = &self.origins;
        let mut found = None;
        for key in path {
            match node.children.get(*key) {
                Some(child) => {
                    node = child;
                    if child.source.is_some() {
                        found = child.source;
                    }
                }
                None => break,
            }
        }
        found.and_then(|i| self.labels.get(i)).map(String::as_str)
    }

    /// The labels of all sources, in merge order.
    pub fn sources(&self) -> &[String] {
        &self.labels
    }
}

/// Which source last set each path.
#[derive(Debug, Clone, Default)]
struct OriginNode {
    source: Option<usize>,
    children: HashMap<String, OriginNode>,
}

impl OriginNode {
    fn record(&mut self, map: &Map, source: usize) {
        for (key, value) in map {
            let child = self.children.entry(key.clone()).or_default();
            child.source = Some(source);
            match value {
                // A map merges into what was there: untouched keys keep their source.
                Value::Map(inner) => child.record(inner, source),
                // Anything else replaces the whole subtree.
                _ => child.children.clear(),
            }
        }
    }
}

enum SourceKind {
    File(String),
    Env(String),
    Yaml(String),
}

struct Source {
    kind: SourceKind,
    /// For error messages and [`Resolved::origin`].
    label: String,
    /// How errors name this source.
    name: String,
}

/// Resolves the configuration from `--config` values (in order) and `--set` values (applied
/// after all of them). `env` looks up environment variables.
pub fn resolve(
    config_uris: &[String],
    set_flags: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ResolveError> {
    // As in the Collector, `--set` values count as config flags.
    let count = config_uris.len() + set_flags.len();
    if count == 0 {
        return Err(ResolveError::NoConfig);
    }
    if count > MAX_CONFIG_SOURCES {
        return Err(ResolveError::TooManySources { count });
    }
    let mut sources = Vec::with_capacity(count);
    for uri in config_uris {
        sources.push(parse_config_uri(uri)?);
    }
    for flag in set_flags {
        sources.push(set_flag_source(flag)?);
    }

    let mut notes = Vec::new();
    let mut root = Map::new();
    let mut origins = OriginNode::default();
    let mut labels = Vec::with_capacity(sources.len());
    for source in sources {
        let document = load(&source, env, &mut notes)?;
        origins.record(&document, labels.len());
        labels.push(source.label);
        merge_maps(&mut root, document);
    }

    let mut resolved = Resolved {
        root: Value::Null,
        notes: Vec::new(),
        origins,
        labels,
    };
    match expand(Value::Map(root), env, &mut notes) {
        Ok(root) => {
            resolved.root = root;
            resolved.notes = notes;
            Ok(resolved)
        }
        Err(error) => Err(ResolveError::Expand {
            label: resolved.origin(&error.key_path()).map(str::to_string),
            error,
        }),
    }
}

/// Turns `--set a.b.c=v` into the inline YAML `a::b::c: v`.
pub fn set_flag_to_yaml(flag: &str) -> Result<String, ResolveError> {
    let Some((key, value)) = flag.split_once('=') else {
        return Err(ResolveError::MissingEqualSign {
            flag: flag.to_string(),
        });
    };
    Ok(format!(
        "{}: {}",
        key.replace('.', KEY_DELIMITER).trim(),
        value.trim()
    ))
}

fn set_flag_source(flag: &str) -> Result<Source, ResolveError> {
    Ok(Source {
        kind: SourceKind::Yaml(set_flag_to_yaml(flag)?),
        label: "--set".to_string(),
        name: format!("--set {flag:?}"),
    })
}

fn parse_config_uri(uri: &str) -> Result<Source, ResolveError> {
    let file = |path: &str| Source {
        kind: SourceKind::File(path.to_string()),
        label: path.to_string(),
        name: format!("config file {path:?}"),
    };
    let bytes = uri.as_bytes();
    let drive_letter = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    let head = uri.split('/').next().unwrap_or(uri);
    if drive_letter || !head.contains(':') {
        return Ok(file(uri));
    }
    let (scheme, opaque) = head
        .split_once(':')
        .map(|(scheme, _)| (scheme, &uri[scheme.len() + 1..]))
        .unwrap_or((uri, ""));
    if !is_valid_scheme(scheme) {
        return Err(ResolveError::InvalidUri {
            uri: uri.to_string(),
        });
    }
    match scheme {
        "file" => Ok(file(opaque)),
        "env" => Ok(Source {
            kind: SourceKind::Env(opaque.to_string()),
            label: format!("env:{opaque}"),
            name: format!("config from environment variable {opaque:?}"),
        }),
        "yaml" => Ok(Source {
            kind: SourceKind::Yaml(opaque.to_string()),
            label: "yaml".to_string(),
            name: format!("config {uri:?}"),
        }),
        "http" | "https" => Err(ResolveError::RemoteNotSupported {
            scheme: scheme.to_string(),
            uri: uri.to_string(),
        }),
        _ => Err(ResolveError::UnsupportedScheme {
            uri: uri.to_string(),
        }),
    }
}

fn load(
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<Note>,
) -> Result<Map, ResolveError> {
    let text = match &source.kind {
        SourceKind::File(path) => {
            std::fs::read_to_string(path).map_err(|e| ResolveError::ReadFile {
                path: path.clone(),
                message: io_error_message(&e),
            })?
        }
        SourceKind::Env(opaque) => lookup_env(opaque, env, notes)
            .map_err(|kind| ResolveError::InvalidSource {
                source_name: source.name.clone(),
                kind,
            })?
            .unwrap_or_default(),
        SourceKind::Yaml(text) => text.clone(),
    };
    parse_document(&text, &source.name)
}

/// Reads one source's YAML into a map; an empty document is an empty map.
fn parse_document(text: &str, source_name: &str) -> Result<Map, ResolveError> {
    match Value::from_yaml_str(text) {
        Err(e) => Err(ResolveError::Parse {
            source_name: source_name.to_string(),
            message: yaml_error_message(&e),
        }),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(Value::Map(map)) => Ok(split_keys(map)),
        Ok(other) => Err(ResolveError::NotAMap {
            source_name: source_name.to_string(),
            kind: other.kind(),
        }),
    }
}

/// `yaml: line L, column C: message`, the way the Collector's YAML errors read.
fn yaml_error_message(e: &serde_yaml::Error) -> String {
    let message = e.to_string();
    match e.location() {
        Some(location) => {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            let message = message
                .strip_suffix(&suffix)
                .map(str::to_string)
                .unwrap_or(message);
            format!(
                "yaml: line {}, column {}: {}",
                location.line(),
                location.column(),
                message
            )
        }
        None => format!("yaml: {message}"),
    }
}

/// Expands keys written `a::b::c` into nested maps, in maps at any depth outside lists.
fn split_keys(map: Map) -> Map {
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let value = match value {
            Value::Map(inner) => Value::Map(split_keys(inner)),
            other => other,
        };
        if key.contains(KEY_DELIMITER) {
            let parts: Vec<&str> = key.split(KEY_DELIMITER).collect();
            let nested = parts.into_iter().rev().fold(value, |inner, part| {
                let mut level = Map::with_capacity(1);
                level.insert(part.to_string(), inner);
                Value::Map(level)
            });
            if let Value::Map(nested) = nested {
                merge_maps(&mut out, nested);
            }
        } else {
            merge_maps(&mut out, Map::from_iter([(key, value)]));
        }
    }
    out
}

/// Deep-merges `src` over `dst`: maps merge key by key, anything else (lists and null included)
/// replaces what was there.
pub fn merge_maps(dst: &mut Map, src: Map) {
    for (key, value) in src {
        match value {
            Value::Map(inner) => {
                if let Some(Value::Map(existing)) = dst.get_mut(&key) {
                    merge_maps(existing, inner);
                } else {
                    dst.insert(key, Value::Map(inner));
                }
            }
            other => {
                dst.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use serde_json::json;

    use super::super::expand::{NoteLevel, UNSET_ENV_MESSAGE};
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn resolve_with(
        uris: &[&str],
        sets: &[&str],
        env: &HashMap<String, String>,
    ) -> Result<Resolved, ResolveError> {
        let lookup = |name: &str| env.get(name).cloned();
        resolve(&strings(uris), &strings(sets), &lookup)
    }

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn set_flags_become_inline_yaml() {
        let cases: &[(&str, &str)] = &[
            (
                "processors.batch.timeout=2s",
                "processors::batch::timeout: 2s",
            ),
            (
                " exporters.otlp/2.endpoint = host:4317 ",
                "exporters::otlp/2::endpoint: host:4317",
            ),
            ("a.b=c=d", "a::b: c=d"),
            ("a=", "a: "),
            ("a.b=[x, y]", "a::b: [x, y]"),
        ];
        for (flag, want) in cases {
            assert_eq!(set_flag_to_yaml(flag).unwrap(), *want, "flag {flag:?}");
        }
        let err = set_flag_to_yaml("processors.batch.timeout").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"processors.batch.timeout\" for flag --set: missing equal sign"
        );
    }

    #[test]
    fn config_uri_forms() {
        let file = |uri: &str| match parse_config_uri(uri) {
            Ok(Source {
                kind: SourceKind::File(path),
                label,
                ..
            }) => {
                assert_eq!(path, label);
                Some(path)
            }
            _ => None,
        };
        assert_eq!(file("config.yaml").as_deref(), Some("config.yaml"));
        assert_eq!(
            file("/etc/otel/config.yaml").as_deref(),
            Some("/etc/otel/config.yaml")
        );
        assert_eq!(file("./conf/a:b.yaml").as_deref(), Some("./conf/a:b.yaml"));
        assert_eq!(
            file("C:\\otel\\config.yaml").as_deref(),
            Some("C:\\otel\\config.yaml")
        );
        assert_eq!(
            file("c:/otel/config.yaml").as_deref(),
            Some("c:/otel/config.yaml")
        );
        assert_eq!(file("file:config.yaml").as_deref(), Some("config.yaml"));
        assert_eq!(file("file:/etc/a.yaml").as_deref(), Some("/etc/a.yaml"));
        assert_eq!(file("file:C:\\a.yaml").as_deref(), Some("C:\\a.yaml"));

        let env = parse_config_uri("env:OTEL_CONFIG").unwrap();
        assert!(matches!(env.kind, SourceKind::Env(ref name) if name == "OTEL_CONFIG"));
        assert_eq!(env.label, "env:OTEL_CONFIG");
        let inline = parse_config_uri("yaml:a::b: c").unwrap();
        assert!(matches!(inline.kind, SourceKind::Yaml(ref text) if text == "a::b: c"));
        assert_eq!(inline.label, "yaml");

        let err = |uri: &str| parse_config_uri(uri).err().unwrap().to_string();
        assert_eq!(
            err("https://example.com/config.yaml"),
            "the \"https\" scheme is not supported (config URI \"https://example.com/config.yaml\"): fetching configuration over the network is not supported, download it and pass the file's path"
        );
        assert!(
            err("http://example.com/c.yaml").starts_with("the \"http\" scheme is not supported")
        );
        assert_eq!(
            err("s3://bucket/config.yaml"),
            "unsupported scheme on URI \"s3://bucket/config.yaml\" (supported schemes: env, file, yaml)"
        );
        assert_eq!(err("1x:config.yaml"), "invalid uri: \"1x:config.yaml\"");
    }

    #[test]
    fn flag_count_rules() {
        let env = HashMap::new();
        let err = resolve_with(&[], &[], &env).unwrap_err();
        assert_eq!(err, ResolveError::NoConfig);
        assert_eq!(err.to_string(), "at least one config flag must be provided");

        // As upstream, `--set` values count as config flags.
        let resolved = resolve_with(&[], &["a.b=1"], &env).unwrap();
        assert_eq!(resolved.root.to_json(), json!({"a": {"b": 1}}));

        let many: Vec<String> = (0..101).map(|i| format!("yaml:k{i}: {i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            resolve_with(&many, &[], &env).unwrap_err(),
            ResolveError::TooManySources { count: 101 }
        );
        assert!(resolve_with(&many[..100], &[], &env).is_ok());
        assert_eq!(
            resolve_with(&many[..100], &["x=1"], &env).unwrap_err(),
            ResolveError::TooManySources { count: 101 }
        );
        assert!(matches!(
            resolve_with(&["yaml:a: 1"], &["nope"], &env).unwrap_err(),
            ResolveError::MissingEqualSign { .. }
        ));
    }

    #[test]
    fn merge_rules() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "base.yaml",
            r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch:
    timeout: 1s
  memory_limiter:
    limit_mib: 512
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [debug]
"#,
        );
        let overlay = write(
            dir.path(),
            "overlay.yaml",
            r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:14317
processors:
  memory_limiter:
exporters: {}
service:
  pipelines:
    traces:
      processors: [batch]
"#,
        );
        let resolved = resolve_with(&[&base, &overlay], &[], &HashMap::new()).unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({
                "receivers": {"otlp": {"protocols": {
                    "grpc": {"endpoint": "0.0.0.0:14317"},
                    "http": {"endpoint": "0.0.0.0:4318"},
                }}},
                "processors": {"batch": {"timeout": "1s"}, "memory_limiter": null},
                "exporters": {"debug": {}},
                "service": {"pipelines": {"traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["debug"],
                }}},
            })
        );
        // Order of keys is the first file's, new keys after.
        let keys: Vec<&String> = resolved.root.as_map().unwrap().keys().collect();
        assert_eq!(keys, ["receivers", "processors", "exporters", "service"]);

        // A later null erases a whole map; a later scalar replaces a map and vice versa.
        let resolved = resolve_with(
            &[
                "yaml:processors: {batch: {timeout: 1s}}",
                "yaml:processors:",
            ],
            &[],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(resolved.root.to_json(), json!({"processors": null}));
        let resolved = resolve_with(
            &["yaml:a: {b: 1}", "yaml:a: 2", "yaml:c: 3", "yaml:c: {d: 4}"],
            &[],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(resolved.root.to_json(), json!({"a": 2, "c": {"d": 4}}));
    }

    #[test]
    fn set_flags_have_the_highest_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "config.yaml",
            "processors:\n  batch:\n    timeout: 1s\n    send_batch_size: 100\nservice:\n  pipelines:\n    traces:\n      receivers: [a, b]\n",
        );
        let resolved = resolve_with(
            &[&base, "yaml:processors::batch::timeout: 5s"],
            &[
                "processors.batch.timeout=2s",
                "service.pipelines.traces.receivers=[c]",
                "exporters.otlp/2.endpoint=collector:4317",
            ],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({
                "processors": {"batch": {"timeout": "2s", "send_batch_size": 100}},
                "service": {"pipelines": {"traces": {"receivers": ["c"]}}},
                "exporters": {"otlp/2": {"endpoint": "collector:4317"}},
            })
        );
        assert_eq!(
            resolved.origin(&["processors", "batch", "timeout"]),
            Some("--set")
        );
        assert_eq!(
            resolved.origin(&["processors", "batch", "send_batch_size"]),
            Some(base.as_str())
        );
        assert_eq!(
            resolved.sources(),
            [
                base.clone(),
                "yaml".to_string(),
                "--set".to_string(),
                "--set".to_string(),
                "--set".to_string()
            ]
        );
    }

    #[test]
    fn yaml_uris_nest_on_double_colons() {
        let resolved = resolve_with(
            &[
                "yaml:exporters::otlp::endpoint: x:4317",
                "yaml:processors::batch/foo::timeout: 3s",
                "yaml:exporters::otlp::tls::insecure: true",
            ],
            &[],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({
                "exporters": {"otlp": {"endpoint": "x:4317", "tls": {"insecure": true}}},
                "processors": {"batch/foo": {"timeout": "3s"}},
            })
        );
        assert_eq!(
            resolved.origin(&["exporters", "otlp", "endpoint"]),
            Some("yaml")
        );
    }

    #[test]
    fn double_colon_keys_in_files_nest_at_any_depth() {
        let resolved = resolve_with(
            &["yaml:{a::b: 1, a: {c: 2}, d: {e::f: 3}, g: [{h::i: 4}]}"],
            &[],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({"a": {"b": 1, "c": 2}, "d": {"e": {"f": 3}}, "g": [{"h::i": 4}]})
        );
    }

    #[test]
    fn env_sources() {
        let env = vars(&[("CFG", "receivers:\n  otlp:\n    protocols: {grpc: {}}\n")]);
        let resolved = resolve_with(&["env:CFG", "env:MISSING"], &[], &env).unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({"receivers": {"otlp": {"protocols": {"grpc": {}}}}})
        );
        assert_eq!(resolved.origin(&["receivers", "otlp"]), Some("env:CFG"));
        assert_eq!(
            resolved.notes,
            vec![Note {
                level: NoteLevel::Warn,
                message: UNSET_ENV_MESSAGE.to_string(),
                name: "MISSING".to_string(),
            }]
        );
        assert_eq!(
            resolve_with(&["env:1BAD"], &[], &env).unwrap_err().to_string(),
            "config from environment variable \"1BAD\": environment variable \"1BAD\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$"
        );
        let env = vars(&[("LIST", "[1, 2]")]);
        assert_eq!(
            resolve_with(&["env:LIST"], &[], &env)
                .unwrap_err()
                .to_string(),
            "config from environment variable \"LIST\": the top level must be a map, found list"
        );
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let env = HashMap::new();
        let missing = dir.path().join("x.yaml").display().to_string();
        assert_eq!(
            resolve_with(&[&missing], &[], &env)
                .unwrap_err()
                .to_string(),
            format!("cannot read config file {missing:?}: No such file or directory")
        );
        assert_eq!(
            resolve_with(&[&format!("file:{missing}")], &[], &env)
                .unwrap_err()
                .to_string(),
            format!("cannot read config file {missing:?}: No such file or directory")
        );

        let bad = write(
            dir.path(),
            "bad.yaml",
            "receivers:\n  otlp:\n    protocols: grpc: x\n",
        );
        let err = resolve_with(&[&bad], &[], &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("config file {bad:?}: yaml: line 3, column 20: mapping values are not allowed in this context")
        );

        let list = write(dir.path(), "list.yaml", "- a\n- b\n");
        assert_eq!(
            resolve_with(&[&list], &[], &env).unwrap_err().to_string(),
            format!("config file {list:?}: the top level must be a map, found list")
        );
        let scalar = write(dir.path(), "scalar.yaml", "hello\n");
        assert_eq!(
            resolve_with(&[&scalar], &[], &env).unwrap_err().to_string(),
            format!("config file {scalar:?}: the top level must be a map, found string")
        );

        let dup = write(dir.path(), "dup.yaml", "a: 1\na: 2\n");
        let err = resolve_with(&[&dup], &[], &env).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("config file {dup:?}: yaml: ")),
            "{err}"
        );

        let binary = dir.path().join("binary.yaml");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let binary = binary.display().to_string();
        let err = resolve_with(&[&binary], &[], &env).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read config file {binary:?}: ")),
            "{err}"
        );

        assert_eq!(
            resolve_with(&["yaml:a: b: c"], &[], &env).unwrap_err().to_string(),
            "config \"yaml:a: b: c\": yaml: line 1, column 5: mapping values are not allowed in this context"
        );
        assert_eq!(
            resolve_with(&["yaml:a: 1"], &["b=c: d"], &env)
                .unwrap_err()
                .to_string(),
            "--set \"b=c: d\": yaml: line 1, column 5: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn empty_sources_are_empty_maps() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.yaml", "");
        let comments = write(dir.path(), "comments.yaml", "# nothing here\n\n");
        let resolved = resolve_with(&[&empty, &comments, "yaml:"], &[], &HashMap::new()).unwrap();
        assert_eq!(resolved.root, Value::Map(Map::new()));
        assert_eq!(resolved.origin(&["anything"]), None);
    }

    #[test]
    fn origins_after_merging_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "config.yaml",
            r#"
receivers:
  otlp:
    protocols:
      grpc: {}
  otlp/2:
    protocols:
      htttp: {}
processors:
  batch:
    timeout: 1s
exporters:
  debug: {}
"#,
        );
        let overlay = write(
            dir.path(),
            "overlay.yaml",
            r#"
receivers:
  otlp:
    protocols:
      http: {}
processors:
exporters:
  debug:
    verbosity: detailed
"#,
        );
        let resolved = resolve_with(&[&base, &overlay], &[], &HashMap::new()).unwrap();
        let origin = |path: &[&str]| resolved.origin(path);
        assert_eq!(origin(&["receivers", "otlp/2"]), Some(base.as_str()));
        assert_eq!(
            origin(&["receivers", "otlp/2", "protocols"]),
            Some(base.as_str())
        );
        assert_eq!(
            origin(&["receivers", "otlp/2", "protocols", "htttp"]),
            Some(base.as_str())
        );
        assert_eq!(
            origin(&["receivers", "otlp", "protocols", "grpc"]),
            Some(base.as_str())
        );
        assert_eq!(
            origin(&["receivers", "otlp", "protocols", "http"]),
            Some(overlay.as_str())
        );
        // The last source that mentions a map is its origin.
        assert_eq!(origin(&["receivers", "otlp"]), Some(overlay.as_str()));
        assert_eq!(origin(&["receivers"]), Some(overlay.as_str()));
        // A path nobody set answers for its deepest set ancestor.
        assert_eq!(
            origin(&["receivers", "otlp/2", "protocols", "htttp", "endpoint"]),
            Some(base.as_str())
        );
        // A later null replaced the whole map.
        assert_eq!(
            origin(&["processors", "batch", "timeout"]),
            Some(overlay.as_str())
        );
        assert_eq!(
            origin(&["exporters", "debug", "verbosity"]),
            Some(overlay.as_str())
        );
        assert_eq!(origin(&["extensions"]), None);
        assert_eq!(origin(&[]), None);
    }

    #[test]
    fn expansion_runs_after_merging_and_errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "config.yaml",
            "exporters:\n  otlp:\n    endpoint: ${env:bad-name}\n    headers:\n      authorization: \"Bearer ${env:TOKEN}\"\n",
        );
        // A reference overridden before expansion is never looked at.
        let env = vars(&[("TOKEN", "t0k$$en")]);
        let resolved =
            resolve_with(&[&base], &["exporters.otlp.endpoint=collector:4317"], &env).unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({"exporters": {"otlp": {
                "endpoint": "collector:4317",
                "headers": {"authorization": "Bearer t0k$en"},
            }}})
        );

        let err = resolve_with(&[&base], &[], &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{base}: exporters::otlp::endpoint: environment variable \"bad-name\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$")
        );
        let ResolveError::Expand { label, error } = err else {
            panic!("expected an expansion error");
        };
        assert_eq!(label.as_deref(), Some(base.as_str()));
        assert_eq!(error.key_path(), ["exporters", "otlp", "endpoint"]);
    }

    #[test]
    fn expansion_and_unescaping_through_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "config.yaml",
            r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:HOST}:${env:PORT}
      http:
        endpoint: ${HOST}:4318
processors:
  transform:
    replacement: "$$1"
    literal: "$${env:HOST}"
    port: ${env:PORT}
    missing: ${env:NOT_SET}
"#,
        );
        let env = vars(&[("HOST", "0.0.0.0"), ("PORT", "4317")]);
        let resolved = resolve_with(&[&base], &[], &env).unwrap();
        assert_eq!(
            resolved.root.to_json(),
            json!({
                "receivers": {"otlp": {"protocols": {
                    "grpc": {"endpoint": "0.0.0.0:4317"},
                    "http": {"endpoint": "0.0.0.0:4318"},
                }}},
                "processors": {"transform": {
                    "replacement": "$1",
                    "literal": "${env:HOST}",
                    "port": 4317,
                    "missing": null,
                }},
            })
        );
        let transform = &resolved.root.as_map().unwrap()["processors"]
            .as_map()
            .unwrap()["transform"];
        assert_eq!(
            transform.as_map().unwrap()["port"],
            Value::Expanded {
                typed: Box::new(Value::Int(4317)),
                raw: "4317".to_string(),
            }
        );
        assert_eq!(
            resolved.notes,
            vec![Note {
                level: NoteLevel::Warn,
                message: UNSET_ENV_MESSAGE.to_string(),
                name: "NOT_SET".to_string(),
            }]
        );
        // Values set from the command line are expanded as well.
        let resolved =
            resolve_with(&[&base], &["processors.transform.port=${env:HOST}"], &env).unwrap();
        assert_eq!(
            resolved.root.to_json()["processors"]["transform"]["port"],
            json!("0.0.0.0")
        );
    }

    #[test]
    fn merge_maps_directly() {
        let mut dst = match Value::from_yaml_str("a: {b: 1, c: [1, 2]}\nd: x").unwrap() {
            Value::Map(m) => m,
            _ => unreachable!(),
        };
        let src = match Value::from_yaml_str("a: {c: [3], e: {}}\nd: {f: 1}").unwrap() {
            Value::Map(m) => m,
            _ => unreachable!(),
        };
        merge_maps(&mut dst, src);
        assert_eq!(
            Value::Map(dst).to_json(),
            json!({"a": {"b": 1, "c": [3], "e": {}}, "d": {"f": 1}})
        );
    }
}
