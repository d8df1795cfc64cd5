//! Test harness for the Kafka integration tests: a real Kafka-protocol broker (Tansu) on
//! a free loopback port, the real `agentwatch run` binary as a child process, and small
//! producer/consumer helpers.
//!
//! Each test starts its own broker (cargo-nextest runs every test in its own process, and
//! Tansu starts in milliseconds) and the broker dies with the test: it is killed on drop
//! and, should the test process die first, by the kernel (`PR_SET_PDEATHSIG`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

const INSTALL_HINT: &str = "deploy/local-broker.sh install";

/// Where the test broker binary is: `$AGENTWATCH_TANSU`, else the cache that
/// `deploy/local-broker.sh install` (run by scripts/test.sh) fills.
pub fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("AGENTWATCH_TANSU") {
        return PathBuf::from(path);
    }
    let tools = std::env::var("AGENTWATCH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/agentwatch/tools")
        });
    tools.join("bin/tansu")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being spawned.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A Tansu broker on 127.0.0.1 with its data in a temporary directory, stopped on drop.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where the test broker keeps records. Tansu 0.6 has a flaw in each engine, so each test
/// uses the one whose flaw it cannot hit:
/// - SQLite (the default) serves fetches correctly from inside a record batch, but never
///   returns a record larger than about 5 MB (the partition stalls);
/// - memory serves large records, but answers a fetch from inside a record batch with
///   the *next* batch, silently skipping records when a consumer resumes mid-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Sqlite,
    Memory,
}

/// Adds the index on record headers that Tansu 0.6's SQLite schema lacks (without it
/// every fetched record scans every stored header, and a rekeyed stream of a few
/// thousand records stalls the broker); see `deploy/local-broker.sh`.
fn index_headers(db: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local-broker.sh");
    let output = Command::new(&script)
        .arg("index")
        .arg(db)
        .output()
        .expect("running deploy/local-broker.sh index");
    assert!(
        output.status.success(),
        "indexing the test broker's headers failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Broker {
    /// Starts a broker on SQLite storage (see [`Storage`]).
    pub fn start() -> Broker {
        Self::start_with(Storage::Sqlite)
    }

    /// Starts a broker on a free port. Panics (a test failure, never a skip) when the
    /// binary is missing, naming the command that installs it.
    pub fn start_with(storage: Storage) -> Broker {
        let binary = tansu_binary();
        assert!(
            binary.is_file(),
            "the test broker is not installed at {}: run `{INSTALL_HINT}` (scripts/test.sh does \
             this), or point AGENTWATCH_TANSU at a tansu 0.6 binary",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tansu.log");
        for _attempt in 0..5 {
            let port = free_port();
            let address = format!("127.0.0.1:{port}");
            let url = format!("tcp://{address}");
            let mut command = Command::new(&binary);
            command
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args([
                    "--storage-engine",
                    match storage {
                        Storage::Sqlite => "sqlite://tansu.db",
                        Storage::Memory => "memory://tansu/",
                    },
                ])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.path().join("tansu.err")).unwrap());
            die_with_parent(&mut command);
            let mut child = command.spawn().expect("starting the test broker");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(&address).is_ok() {
                    if storage == Storage::Sqlite {
                        index_headers(&dir.path().join("tansu.db"));
                    }
                    return Broker {
                        child,
                        address,
                        log,
                        _dir: dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the test broker did not start; log in {}", log.display());
    }

    /// Creates topics with `partitions` partitions each.
    pub fn create_topics(&self, names: &[&str], partitions: i32) {
        let config = agentwatch::config::KafkaConfig {
            brokers: self.address.clone(),
            ..agentwatch::config::ServiceConfig::default().kafka
        };
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        agentwatch::kafka::topics::create_topics(&config, &names, partitions).unwrap();
    }

    /// A producer that accepts records up to 16 MiB.
    pub fn producer(&self) -> ThreadedProducer<DefaultProducerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("message.max.bytes", "16777216")
            .set("linger.ms", "5")
            .create()
            .unwrap()
    }

    /// Produces records and waits for all of them to be acknowledged.
    pub fn produce(&self, topic: &str, records: &[TestRecord]) {
        self.produce_into(topic, None, records);
    }

    /// Produces records to one partition of `topic`, whatever their keys.
    pub fn produce_to(&self, topic: &str, partition: i32, records: &[TestRecord]) {
        self.produce_into(topic, Some(partition), records);
    }

    fn produce_into(&self, topic: &str, partition: Option<i32>, records: &[TestRecord]) {
        let producer = self.producer();
        for record in records {
            let mut base = BaseRecord::<[u8], [u8]>::to(topic).payload(&record.payload);
            if let Some(partition) = partition {
                base = base.partition(partition);
            }
            if let Some(key) = &record.key {
                base = base.key(key.as_slice());
            }
            if let Some(headers) = &record.headers {
                base = base.headers(headers.clone());
            }
            let mut base = base;
            loop {
                match producer.send(base) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        base = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }

    /// Every record of `topic` from the beginning, waiting until at least `expected` have
    /// arrived and nothing more arrives for a second (or `timeout` passes).
    pub fn read_all(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", format!("test-reader-{topic}-{}", unique()))
            .set("fetch.max.bytes", "104857600")
            .set("receive.message.max.bytes", "209715200")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        let mut last = Instant::now();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    records.push(message.detach());
                    last = Instant::now();
                }
                Some(Err(e)) => eprintln!("reader error: {e}"),
                None => {
                    if records.len() >= expected && last.elapsed() > Duration::from_secs(1) {
                        break;
                    }
                }
            }
        }
        records
    }

    /// How many records `topic` holds now: the sum of its partitions' end offsets less
    /// their start offsets. A reader that waits for that many does not stop early on a
    /// slow fetch, as one that stops after a quiet second can.
    pub fn records_in(&self, topic: &str) -> usize {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        (0..partitions as i32)
            .map(|partition| {
                let (low, high) = consumer
                    .fetch_watermarks(topic, partition, timeout)
                    .unwrap();
                (high - low).max(0) as usize
            })
            .sum()
    }

    /// The offsets `group` committed for `topic`, summed over partitions.
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        match consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                })
                .sum(),
            Err(_) => 0,
        }
    }

    /// Overwrites `group`'s committed offsets of `topic` (the group must have no members).
    pub fn rewind_group(&self, group: &str, topic: &str, partitions: i32, offset: i64) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(offset))
                .unwrap();
        }
        consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .unwrap();
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Option<OwnedHeaders>,
}

impl TestRecord {
    /// A record keyed by its agent, as gateways produce them.
    pub fn keyed(agent: &str, payload: Vec<u8>) -> Self {
        TestRecord {
            key: Some(agent.as_bytes().to_vec()),
            payload,
            headers: None,
        }
    }
}

/// The headers of a record as a map (values lossily decoded).
pub fn headers_of(message: &OwnedMessage) -> BTreeMap<String, String> {
    message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a member killed without leaving its group has been dropped from it
/// (`session.timeout.ms` in [`service_config`], 6 s, and a margin). A member that joins
/// earlier races the expiry: the test broker (Tansu 0.6) gives it no partitions while
/// the dead member holds them, and dropping the dead member later starts no new
/// generation, so its partitions stay unassigned.
pub fn outlive_killed_session() {
    std::thread::sleep(std::time::Duration::from_secs(10));
}

/// A service config for tests: loopback broker, metrics on a free port, short flush
/// and session timeouts so crash tests do not wait long for the group.
pub fn service_config(broker: &Broker, state: &Path, group: &str, extra: &str) -> String {
    format!(
        r#"[kafka]
brokers = "{brokers}"
group_id = "{group}"
create_topics = true
partitions = 2
[kafka.options]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"statistics.interval.ms" = "500"
[state]
dir = "{state}"
flush_interval = "200ms"
[metrics]
listen = "127.0.0.1:0"
[log]
progress_interval = "1s"
[shutdown]
timeout = "20s"
{extra}
"#,
        brokers = broker.address,
        state = state.display(),
    )
}

/// `agentwatch run` as a child process, with its stderr captured in a file.
pub struct ServiceProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl ServiceProcess {
    /// Writes `config` next to the state and starts the service on it.
    pub fn start(dir: &Path, name: &str, config: &str) -> ServiceProcess {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_agentwatch"));
        command
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        die_with_parent(&mut command);
        ServiceProcess {
            child: Some(command.spawn().expect("starting agentwatch run")),
            log,
        }
    }

    /// Everything the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The metrics endpoint's address, once the service has logged it.
    pub fn metrics_address(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(address) = self
                .log()
                .lines()
                .find(|l| l.contains("metrics endpoint listening"))
                .and_then(|l| l.split("address=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.parse().ok())
            {
                return address;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "service never reported its metrics address:\n{}",
            self.log()
        );
    }

    /// `GET path` on the metrics endpoint: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.metrics_address(), path)
    }

    /// Waits until `metric` (a full series name as rendered, e.g.
    /// `agentwatch_events_total{result="processed"}`) reaches `at_least`.
    pub fn wait_for_metric(&self, series: &str, at_least: f64, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        let mut value = 0.0;
        while Instant::now() < deadline {
            value = metric(&self.get("/metrics").1, series).unwrap_or(0.0);
            if value >= at_least {
                return value;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{series} reached only {value} (wanted {at_least}) within {timeout:?}; log:\n{}",
            self.log()
        );
    }

    /// Waits until the service owns partitions (`/readyz`): records sent after that are
    /// consumed by it or a member it shares the group with, not by a group still forming.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get("/readyz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "never ready; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the service.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("service running").id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Stops the service with SIGTERM and checks that it shut down cleanly.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        assert!(
            self.wait(std::time::Duration::from_secs(60)).success(),
            "{}",
            self.log()
        );
    }

    /// Waits for the service to exit, failing after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("service running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "service did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plain HTTP/1.0 GET: (status, body).
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of one series in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum of every series of a metric family.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `group` has committed at least `total` offsets over the `partitions` of
/// `topic`, failing after three minutes with the members' logs.
pub fn wait_committed(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: i32,
    total: usize,
    members: &[&ServiceProcess],
) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let committed = broker.committed(group, topic, partitions);
        if committed >= total as i64 {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = members.iter().map(|m| m.log()).collect();
            panic!(
                "group {group} committed {committed} of {total} on {topic}; logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The simulator's events with attacks, as the Kafka tests stream them.
pub fn simulated(agents: usize, days: u32, seed: u64) -> Vec<agentwatch::model::AgentEventV1> {
    agentwatch::sim::Simulation::new(agentwatch::sim::SimConfig {
        agents,
        days,
        seed,
        attacks: true,
        ..agentwatch::sim::SimConfig::default()
    })
    .events()
    .collect()
}
