//! A private `redis-server` on a free loopback port (plain, password or
//! TLS), with `redis-cli` and a client for publishing and counting
//! subscribers. Does not own the cluster harness (`cluster`) or certificates
//! (`tls`).

use super::wait_until;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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

    /// A plain synchronous connection, for setting up and reading back
    /// what handlers did.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("a valid redis URL")
            .get_connection()
            .expect("connect to redis")
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

    /// `command`'s line of `INFO commandstats` (`cmdstat_<command>:calls=...`).
    pub fn command_stats(&self, command: &str) -> String {
        let stats = self.cli(&["INFO", "commandstats"]).unwrap();
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
            .unwrap_or_else(|| panic!("no {command} stats in {stats}"))
            .to_string()
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
