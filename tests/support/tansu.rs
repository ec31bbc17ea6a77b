//! A tansu broker (a Kafka-compatible broker, from crates.io) for the Kafka tests: started
//! on a free loopback port with sqlite storage in a temp dir, topics created explicitly,
//! stopped when dropped. `./scripts/test` installs tansu; `FERROTEL_TANSU` may name the binary.

// Each test crate uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait has a limit.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FERROTEL_TANSU") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("FERROTEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ferrotel")))
        .expect("HOME or FERROTEL_CACHE is set");
    let path = cache.join("tansu/bin/tansu");
    assert!(
        path.is_file(),
        "the Kafka tests need the tansu broker at {} (run ./scripts/test, which installs it, or \
         `cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --root <dir>` \
         and set FERROTEL_TANSU=<dir>/bin/tansu)",
        path.display()
    );
    path
}

/// A tansu broker on a free loopback port, stopped when dropped.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn start_on(port: u16, dir: tempfile::TempDir) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("tansu.log"))
            .expect("create tansu.log");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir.path())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child: Some(child),
            port,
            dir,
        }
    }

    pub fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Broker::start_on(port, tempfile::tempdir().unwrap())
    }

    /// Creates topics of three partitions.
    pub fn create_topics(&self, topics: &[&str]) {
        for topic in topics {
            self.create_topic(topic, 3);
        }
    }

    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu_binary())
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .args(["--partitions", &partitions.to_string(), topic])
            .stdout(Stdio::null())
            .status()
            .expect("run tansu topic create");
        assert!(status.success(), "tansu topic create {topic}");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
