//! A 3-node Redis Cluster on loopback for the cluster tests: ports with a
//! free bus port, nodes that restart from their nodes.conf, slot lookup and
//! slot migration. Does not own the single-server harness (`redis_server`).

use super::wait_until;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

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
