//! Test harness shared by the integration tests: a real `redis-server` on a
//! free loopback port, the real `spin-redis` binary, and polling helpers.
//!
//! Waiting is bounded polling for an effect (a log line appearing), never an
//! assertion on how long something took.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod http;
#[allow(unused_imports)] // the benchmark, which shares this module, reads no metrics
pub use http::*;

/// How long to wait for an expected effect before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("compat/tests/fixtures").join(name)
}

pub fn free_port() -> u16 {
    // Port 0 lets the kernel choose; the listener is dropped right before
    // redis-server binds, a race that is harmless on a test machine.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A private redis-server, stopped when dropped.
pub struct Redis {
    pub port: u16,
    /// Set when the server was started with `--requirepass`.
    pub password: Option<String>,
    /// Set for a TLS-only server: the CA file that verifies it.
    pub tls_ca: Option<PathBuf>,
    child: Child,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Redis {
        let port = free_port();
        Self::start_on(port, extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Redis {
        assert_ne!(port, 6379, "never the shared default port");
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", dir.path().to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let password = extra
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1].to_string());
        let tls_ca = extra
            .windows(2)
            .find(|w| w[0] == "--tls-ca-cert-file")
            .map(|w| PathBuf::from(w[1]));
        let r = Redis {
            port,
            password,
            tls_ca,
            child,
            dir,
        };
        // PONG, or NOAUTH when the default user is disabled: either way the
        // server is up.
        wait_until("redis-server answers PING", || {
            r.cli(&["PING"])
                .is_some_and(|o| o.trim() == "PONG" || o.starts_with("NOAUTH"))
        });
        r
    }

    /// The URL to connect with (credentials included).
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => self.plain_url(),
        }
    }

    /// The URL without credentials, as handlers and logs must show it.
    pub fn plain_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against this server; `None` if it could not connect.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(self.password.iter().flat_map(|pw| {
                [
                    "-a".to_string(),
                    pw.clone(),
                    "--no-auth-warning".to_string(),
                ]
            }))
            .args(self.tls_ca.iter().flat_map(|ca| {
                [
                    "--tls".to_string(),
                    "--cacert".to_string(),
                    ca.display().to_string(),
                ]
            }))
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    pub fn publish(&self, channel: &str, payload: &[u8]) {
        if self.tls_ca.is_some() {
            let text = std::str::from_utf8(payload).expect("text payloads over TLS");
            self.cli(&["PUBLISH", channel, text])
                .expect("PUBLISH over TLS");
            return;
        }
        let client = redis::Client::open(self.url()).unwrap();
        let mut con = client.get_connection().expect("connect to redis");
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut con)
            .expect("PUBLISH");
    }

    /// Subscribers of `channel`, from `PUBSUB NUMSUB`.
    pub fn subscribers(&self, channel: &str) -> i64 {
        if self.tls_ca.is_some() {
            let out = self.cli(&["PUBSUB", "NUMSUB", channel]).unwrap_or_default();
            return out
                .lines()
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
        }
        let client = redis::Client::open(self.url()).unwrap();
        let Ok(mut con) = client.get_connection() else {
            return 0;
        };
        let v: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut con)
            .unwrap_or_default();
        match v.get(1) {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and starts a new one on the same port.
    pub fn restart(&mut self, extra: &[&str]) {
        self.stop();
        let fresh = Redis::start_on(self.port, extra);
        // Swap in the new process; the old, stopped one is dropped.
        let old = std::mem::replace(self, fresh);
        drop(old);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = &self.dir;
    }
}

/// Polls `cond` until it holds, panicking with `what` after [`PATIENCE`].
/// How long start-up may take before the first subscription: a cold
/// compile of a large component (the 18 MB Python one) takes tens of seconds
/// on a loaded 2-core machine. A wait for readiness, not a timing assertion.
pub const START_UP_PATIENCE: Duration = Duration::from_secs(300);

/// Like [`wait_until`] with a patience of its own.
pub fn wait_until_within(what: &str, patience: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > patience {
            panic!("gave up waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > PATIENCE {
            panic!("gave up waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `spin-redis up`.
pub struct SpinRedis {
    child: Option<Child>,
    pub log_dir: PathBuf,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spin-redis"));
    c.env_remove("RUST_LOG").env("SPIN_REDIS_LOG", "info");
    c
}

impl SpinRedis {
    /// Starts `spin-redis up -f manifest` with a fresh log folder and waits
    /// until every `(channel, subscribers)` in `ready` is subscribed.
    pub fn up(redis: &Redis, manifest: &Path, extra: &[&str], ready: &[&str]) -> SpinRedis {
        Self::up_with_env(redis, manifest, extra, &[], ready)
    }

    /// Like [`SpinRedis::up`] with extra environment variables.
    pub fn up_with_env(
        redis: &Redis,
        manifest: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        ready: &[&str],
    ) -> SpinRedis {
        let s = Self::spawn_with_env(manifest, extra, env);
        for ch in ready {
            let mut s_ref = Some(&s);
            wait_until_within(
                &format!("spin-redis subscribed to {ch:?}"),
                START_UP_PATIENCE,
                || {
                    if let Some(sr) = s_ref.as_mut() {
                        assert!(sr.is_running(), "spin-redis exited early:\n{}", sr.stderr());
                    }
                    redis.subscribers(ch) >= 1
                },
            );
        }
        s
    }

    pub fn spawn(manifest: &Path, extra: &[&str]) -> SpinRedis {
        Self::spawn_with_env(manifest, extra, &[])
    }

    pub fn spawn_with_env(manifest: &Path, extra: &[&str], env: &[(&str, &str)]) -> SpinRedis {
        Self::spawn_command("up", manifest, extra, env)
    }

    /// Starts `spin-redis <command> -f manifest` (`up` or `watch`) with a
    /// fresh log folder.
    pub fn spawn_command(
        command: &str,
        manifest: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> SpinRedis {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("logs");
        let stderr_path = dir.path().join("stderr.txt");
        let stdout_path = dir.path().join("stdout.txt");
        let child = bin()
            .arg(command)
            .arg("-f")
            .arg(manifest)
            .arg("-L")
            .arg(&log_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env("SPIN_REDIS_CACHE_DIR", dir.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn spin-redis");
        SpinRedis {
            child: Some(child),
            log_dir,
            stderr_path,
            stdout_path,
            _dir: dir,
        }
    }

    /// The process id (0 once waited for).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn is_running(&self) -> bool {
        // `try_wait` needs `&mut`. A process that exited stays a zombie
        // until it is waited for, and a zero-signal kill still reaches a
        // zombie: ask /proc for its state instead.
        let pid = self.child.as_ref().map(|c| c.id()).unwrap_or(0);
        if pid == 0 {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X'),
            Err(_) => false,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn log(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.log_dir.join(file)).unwrap_or_default()
    }

    pub fn log_text(&self, file: &str) -> String {
        String::from_utf8_lossy(&self.log(file)).into_owned()
    }

    /// Waits until the log `file` contains `needle`.
    pub fn wait_log(&self, file: &str, needle: &str) {
        wait_until(&format!("{file} to contain {needle:?}"), || {
            self.log_text(file).contains(needle)
        });
    }

    /// Waits until spin-redis's stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        wait_until(
            &format!("stderr to contain {needle:?}; it is:\n{}", self.stderr()),
            || self.stderr().contains(needle),
        );
    }

    /// Waits until spin-redis logged a failure of `component` on `channel`
    /// whose reason starts with `reason`, whatever other fields (outcome,
    /// duration) stand between them.
    pub fn wait_failure(&self, component: &str, channel: &str, reason: &str) {
        let at = format!("component={component} channel={channel} ");
        let why = format!(" reason={reason}");
        wait_until(
            &format!(
                "a failure of {component} on {channel}: {reason}; stderr is:\n{}",
                self.stderr()
            ),
            || {
                self.stderr()
                    .lines()
                    .any(|l| l.contains("handler failed") && l.contains(&at) && l.contains(&why))
            },
        );
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait()
    }

    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > PATIENCE {
                let _ = child.kill();
                panic!("spin-redis did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SpinRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes `text` as `spin.toml` in a fresh folder and returns (folder, path).
pub fn manifest(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Runs the binary to completion with `args`.
pub fn run(args: &[&str]) -> (i32, String, String) {
    run_with_env(args, &[])
}

/// Runs the binary to completion with `args` and extra environment.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = bin()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// A free loopback port whose cluster bus port (port + 10000) is free too;
/// at or below 55535.
pub fn free_cluster_port() -> u16 {
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().expect("local addr").port();
        if !(1024..=55535).contains(&port) {
            // Outside the range: take one below it, derived from this one.
            let candidate = 20000 + port % 30000;
            if TcpListener::bind(("127.0.0.1", candidate)).is_ok()
                && TcpListener::bind(("127.0.0.1", candidate + 10000)).is_ok()
            {
                return candidate;
            }
            continue;
        }
        drop(l);
        if TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// One node of a test [`Cluster`]: a redis-server with
/// `--cluster-enabled yes` and its own folder (which keeps its nodes.conf
/// across a restart).
pub struct ClusterNode {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl ClusterNode {
    fn start(port: u16) -> ClusterNode {
        let mut n = ClusterNode {
            port,
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        n.launch();
        n
    }

    fn launch(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().unwrap()])
            .args(["--cluster-enabled", "yes"])
            .args([
                "--cluster-config-file",
                dir.join("nodes.conf").to_str().unwrap(),
            ])
            .args(["--cluster-node-timeout", "2000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        wait_until("cluster node answers PING", || {
            self.cli(&["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
    }

    /// Runs redis-cli against this node only (no redirects followed).
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn id(&self) -> String {
        self.cli(&["CLUSTER", "MYID"]).unwrap().trim().to_string()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the node and starts it again on the same port and folder: it
    /// rejoins the cluster from its nodes.conf (its data is gone).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 3-node Redis Cluster on loopback, no replicas, every node stopped
/// when dropped.
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 3 {
            let p = free_cluster_port();
            if !ports.contains(&p) && !ports.iter().any(|q| p.abs_diff(*q) == 10000) {
                ports.push(p);
            }
        }
        let nodes: Vec<ClusterNode> = ports.iter().map(|p| ClusterNode::start(*p)).collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let c = Cluster { nodes };
        c.wait_ok();
        c
    }

    /// Waits until every node says `cluster_state:ok` and knows all three.
    pub fn wait_ok(&self) {
        wait_until("the cluster to be ok on every node", || {
            self.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"]).is_some_and(|i| {
                    i.contains("cluster_state:ok") && i.contains("cluster_known_nodes:3")
                })
            })
        });
    }

    /// A synchronous cluster connection that follows redirects.
    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> = self.nodes.iter().map(ClusterNode::url).collect();
        redis::cluster::ClusterClient::new(urls)
            .unwrap()
            .get_connection()
            .expect("connect to the cluster")
    }

    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The index in `nodes` of the node serving `slot`, as node 0 sees it.
    pub fn owner(&self, slot: u16) -> usize {
        let text = self.nodes[0].cli(&["CLUSTER", "SLOTS"]).unwrap();
        // Flat redis-cli output: start, end, ip, port, id, [more nodes...],
        // then the next range. Find the range holding the slot.
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let ports: Vec<String> = self.nodes.iter().map(|n| n.port.to_string()).collect();
        let mut i = 0;
        while i + 3 < lines.len() {
            let (Ok(start), Ok(end)) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>())
            else {
                i += 1;
                continue;
            };
            if lines[i + 2] == "127.0.0.1" {
                if (start..=end).contains(&slot) {
                    return ports
                        .iter()
                        .position(|p| p == lines[i + 3])
                        .expect("a node of this cluster");
                }
                i += 4;
            } else {
                i += 1;
            }
        }
        panic!("slot {slot} has no owner in:\n{text}");
    }

    /// A key (`<prefix>{tag}`) whose slot is served by node `node`.
    pub fn key_on(&self, node: usize, prefix: &str) -> String {
        (0..10_000)
            .map(|i| format!("{prefix}{{t{i}}}"))
            .find(|k| self.owner(self.slot(k)) == node)
            .expect("some tag hashes to every node")
    }

    /// Moves `slot` and its keys from its owner to node `to`, as
    /// `redis-cli --cluster reshard` does: IMPORTING, MIGRATING, MIGRATE,
    /// then the new owner announced to every node.
    pub fn move_slot(&self, slot: u16, to: usize) {
        let from = self.owner(slot);
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let (src, dst) = (&self.nodes[from], &self.nodes[to]);
        let s = slot.to_string();
        let ok = |out: Option<String>, what: &str| {
            let out = out.unwrap_or_default();
            assert!(out.trim() == "OK", "{what}: {out}");
        };
        ok(
            dst.cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src.id()]),
            "importing",
        );
        ok(
            src.cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst.id()]),
            "migrating",
        );
        loop {
            let keys = src.cli(&["CLUSTER", "GETKEYSINSLOT", &s, "100"]).unwrap();
            let keys: Vec<&str> = keys
                .lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                break;
            }
            let port = dst.port.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            let out = src.cli(&args).unwrap_or_default();
            assert!(out.trim() == "OK", "migrate: {out}");
        }
        let id = dst.id();
        for n in [dst, src] {
            ok(
                n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &id]),
                "setslot node",
            );
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if i != from && i != to {
                ok(
                    n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &id]),
                    "setslot node",
                );
            }
        }
        wait_until("every node to see the new owner", || self.owner(slot) == to);
    }
}

/// Makes a CA and a server certificate for 127.0.0.1 in `dir`.
pub fn certificates(dir: &Path, ca_name: &str) {
    let sh = |args: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout {ca_name}.key -out {ca_name}.crt -days 2 -subj /CN={ca_name}"
    ));
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    sh(&format!(
        "openssl x509 -req -in server.csr -CA {ca_name}.crt -CAkey {ca_name}.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf"
    ));
}

impl SpinRedis {
    /// Like [`SpinRedis::spawn`], with the log files in `log_dir`, which the
    /// test may have prepared (a log file that is a pipe, say).
    pub fn spawn_logging_to(manifest: &Path, extra: &[&str], log_dir: &Path) -> SpinRedis {
        let dir = tempfile::tempdir().unwrap();
        let stderr_path = dir.path().join("stderr.txt");
        let stdout_path = dir.path().join("stdout.txt");
        let child = bin()
            .arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("-L")
            .arg(log_dir)
            .args(extra)
            .env("SPIN_REDIS_CACHE_DIR", dir.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn spin-redis");
        SpinRedis {
            child: Some(child),
            log_dir: log_dir.to_path_buf(),
            stderr_path,
            stdout_path,
            _dir: dir,
        }
    }
}

/// The environment blocks `env.wat` printed, one map per run. Each run
/// starts with the component's own `BLOCK=start` (user variables come
/// first).
pub fn wagi_blocks(log: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    log.split("BLOCK=start\n")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The environment blocks the Rust component printed: sorted `KEY=VALUE`
/// lines, each run ended by `payload bytes: N`.
pub fn component_blocks(log: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut block = std::collections::BTreeMap::new();
    for line in log.lines() {
        if line.starts_with("payload bytes: ") {
            out.push(std::mem::take(&mut block));
        } else if let Some((k, v)) = line.split_once('=') {
            block.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// The Rust component that prints its environment (built by
/// tests/guests/build.sh).
pub fn env_component() -> std::path::PathBuf {
    let c = repo().join("tests/guests/rust-env-component/rust-env-component.wasm");
    assert!(
        c.is_file(),
        "{} is missing: run bash tests/guests/build.sh (tests/all.sh does)",
        c.display()
    );
    c
}
