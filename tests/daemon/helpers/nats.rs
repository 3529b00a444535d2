//! A real three-node NATS Server cluster with JetStream and MQTT on free loopback ports:
//! the clustered broker iocd replicas share (issue 15). Each node can be killed (SIGKILL)
//! and started again with its store. Killed on `Drop`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iocd_testkit::free_port;

/// The oldest nats-server the cluster tests run on: 2.9.10 (Debian 12's) refuses MQTT
/// topics with a '.' and stalls a restarted replica's backlog (docs/ha.md).
const MIN_VERSION: (u32, u32) = (2, 10);

/// A nats-server of [`MIN_VERSION`] or later: `$NATS_SERVER` (which `.ci/run` sets from
/// `.ci/nats-server`), else the one on `PATH`. When there is none: `None` with a note (the
/// test is skipped), or a failure under `CI`.
#[must_use]
pub fn nats_server() -> Option<PathBuf> {
    let binary = match std::env::var_os("NATS_SERVER") {
        Some(path) => Some(PathBuf::from(path)),
        None => super::installed(&["nats-server"], "nats-server"),
    }?;
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    if parse_version(&version).is_some_and(|v| v >= MIN_VERSION) {
        return Some(binary);
    }
    let why = format!(
        "{} answers {version:?}; the cluster tests need nats-server {}.{} or later \
         (NATS_SERVER=$(.ci/nats-server) fetches one)",
        binary.display(),
        MIN_VERSION.0,
        MIN_VERSION.1
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("NOTE: {why}; test skipped outside CI");
    None
}

/// `(major, minor)` from `nats-server: v2.15.1`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().last()?.trim_start_matches('v');
    let mut parts = version.split('.').map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// One node: its ports, configuration and process.
struct Node {
    mqtt: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A three-node cluster.
pub struct NatsCluster {
    binary: PathBuf,
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three nodes (JetStream, MQTT with streams and consumers replicated on all
    /// three) and waits until each accepts MQTT connections. The free ports are chosen
    /// before the servers bind them, so another test can take one in between: a node that
    /// exits before it listens (`bind: address already in use`) makes the whole cluster
    /// start again on fresh ports, up to three times.
    ///
    /// # Panics
    /// When a node does not come up within 20 seconds, or exits three times (with its log).
    #[must_use]
    pub fn start(binary: &Path) -> NatsCluster {
        let mut attempt = 1;
        loop {
            let mut cluster = Self::configure(binary);
            for i in 0..3 {
                cluster.start_node(i);
            }
            match (0..3).try_for_each(|i| cluster.wait_listening(i)) {
                Ok(()) => return cluster,
                // Only a port race is worth another try; any other failure says so at once.
                Err(log) if attempt < 3 && log.contains("address already in use") => {
                    eprintln!(
                        "NOTE: a NATS node exited before it listened; starting again:\n{log}"
                    );
                    attempt += 1;
                }
                Err(log) => panic!("a NATS node exited before it listened (try {attempt}):\n{log}"),
            }
        }
    }

    /// Three nodes' configurations on fresh free ports, none started.
    fn configure(binary: &Path) -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("nats-route://127.0.0.1:{cluster}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, cluster, mqtt)) in ports.iter().enumerate() {
            let conf = dir.path().join(format!("n{i}.conf"));
            let store = dir.path().join(format!("js{i}"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: iocd, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n\
                     mqtt {{ listen: 127.0.0.1:{mqtt}, stream_replicas: 3, consumer_replicas: 3 }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .expect("write the node's configuration");
            nodes.push(Node {
                mqtt: *mqtt,
                log: dir.path().join(format!("n{i}.log")),
                conf,
                child: None,
            });
        }
        NatsCluster {
            binary: binary.to_path_buf(),
            _dir: dir,
            nodes,
        }
    }

    /// Node `i`'s MQTT URL.
    #[must_use]
    pub fn url(&self, i: usize) -> String {
        format!("mqtt://127.0.0.1:{}", self.nodes[i].mqtt)
    }

    /// Node `i`'s MQTT port.
    #[must_use]
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].mqtt
    }

    /// Node `i`'s log.
    #[must_use]
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// Starts node `i` (again), with its store.
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open the node's log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        node.child = Some(child);
    }

    /// SIGKILL on node `i`, as a crash.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until node `i` accepts TCP connections on its MQTT port. Blocks the calling
    /// thread, as `TestBroker` does: a synchronous helper, bounded.
    ///
    /// # Panics
    /// When the node does not come up within 20 seconds, or exits first (with its log).
    pub fn wait_port(&mut self, i: usize) {
        if let Err(log) = self.wait_listening(i) {
            panic!("NATS node {i} exited before it listened; its log:\n{log}");
        }
    }

    /// [`NatsCluster::wait_port`], or node `i`'s log when its process exited first.
    ///
    /// # Panics
    /// When the node does not come up within 20 seconds (with its log).
    #[allow(
        clippy::disallowed_methods,
        reason = "a synchronous helper; the wait is short and bounded"
    )]
    fn wait_listening(&mut self, i: usize) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.nodes[i].mqtt));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = self.nodes[i]
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                return Err(self.log(i));
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "NATS node {i} did not come up; its log:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }
}
