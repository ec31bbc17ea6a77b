//! A real Prometheus server (the Debian package's binary) for the exporters' tests: started
//! on 127.0.0.1 with its data in a temp dir, waited for until ready, queried over its HTTP
//! API, killed on drop.

use std::collections::BTreeMap;
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness;

/// Bound of the wait for the server to be ready.
const WAIT: Duration = Duration::from_secs(30);

/// Labels of a stored series, `__name__` included.
pub type Labels = BTreeMap<String, String>;

pub struct PrometheusServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus on `port` with `config` as its prometheus.yml and the extra command
    /// line `flags`, and waits until it is ready.
    pub fn start_on(port: u16, config: &str, flags: &[&str]) -> PrometheusServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = File::create(dir.path().join("prometheus.log")).expect("create log");
        let child = Command::new(harness::tool(
            "FERROTEL_PROMETHEUS",
            "prometheus",
            "prometheus",
        ))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(flags)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
        let mut server = PrometheusServer { child, port, dir };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", server.log());
            }
            if let Ok((200, _)) = harness::http_get(&format!("http://127.0.0.1:{port}/-/ready")) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {WAIT:?}:\n{}",
                server.log()
            );
            sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// GET `path` of the HTTP API with `query`; the answer's JSON, which must say success.
    pub fn api(&self, path: &str, query: &[(&str, String)]) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let body: Value = rt.block_on(async {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client")
                .get(format!("http://127.0.0.1:{}{path}", self.port))
                .query(query)
                .send()
                .await
                .expect("query")
                .json()
                .await
                .expect("query result")
        });
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body
    }

    /// An instant query: every series as (labels, value).
    pub fn query(&self, promql: &str) -> Vec<(Labels, String)> {
        let body = self.api("/api/v1/query", &[("query", promql.to_string())]);
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|series| {
                let value = series["value"][1].as_str().unwrap_or("").to_string();
                (labels_of(&series["metric"]), value)
            })
            .collect()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON object of label names to values.
pub fn labels_of(v: &Value) -> Labels {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}
