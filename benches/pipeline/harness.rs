//! The shared harness of the benchmark: sizes from the environment, a
//! redis-server tuned for floods, a pipelined publisher, `spin-redis up` as
//! a child process with its peak RSS, bounded waiting, and the report whose
//! every row carries its ratio to a baseline measured in the same run.
//!
//! Not owned here: what any row measures (one file per group of rows).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::support::Redis;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test harness's redis-server, tuned for floods.
pub fn start_redis() -> Redis {
    // The benchmark floods on purpose: let the subscriber's buffer grow
    // rather than have redis cut it off mid-measurement.
    Redis::start_with(&["--client-output-buffer-limit", "pubsub 0 0 0"])
}

pub fn connect(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Publishes `n` payloads from `make` in pipelined batches of 1000.
pub fn flood(url: &str, channel: &str, n: usize, make: impl Fn(usize) -> Vec<u8>) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut i = 0;
    while i < n {
        let mut pipe = redis::pipe();
        for j in i..(i + 1000).min(n) {
            pipe.cmd("PUBLISH").arg(channel).arg(make(j)).ignore();
        }
        let () = pipe.query(&mut con).unwrap();
        i += 1000;
    }
}

/// Waits until `cond` holds, up to `limit`; says so and returns false when
/// it gave up.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            eprintln!("  (gave up waiting for {what})");
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// The `p` quantile of `v` (sorted in place).
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// A one-component v1 manifest: component `bench` on channel `bench` at
/// `url`, its wasm and executor, `files` mounted at /data when given.
pub fn manifest(
    dir: &Path,
    wasm: &Path,
    executor: &str,
    mount: Option<&Path>,
    url: &str,
) -> PathBuf {
    let files = match mount {
        Some(m) => format!(
            "files = [{{ source = \"{}\", destination = \"/data\" }}]\n",
            m.display()
        ),
        None => String::new(),
    };
    let text = format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"{url}\" }}\n[[component]]\nid = \"bench\"\nsource = \"{}\"\n{files}[component.trigger]\nchannel = \"bench\"\nexecutor = {{ type = \"{executor}\" }}\n",
        wasm.display(),
    );
    let p = dir.join("spin.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `spin-redis up` as a child process, with its logs in a folder of its own.
pub struct Up {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Up {
    /// `spin-redis up` with default settings, quiet (no echo of handler
    /// output to the terminal), plus `extra` flags.
    pub fn start(manifest: &Path, extra: &[&str], cache: &Path) -> Up {
        Up::start_echo(manifest, &[&["-q"], extra].concat(), cache)
    }

    /// Like `start`, echoing handler output to stdout (the default; stdout
    /// goes to /dev/null, so this measures spin-redis's echo path, not a
    /// terminal).
    pub fn start_echo(manifest: &Path, extra: &[&str], cache: &Path) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_spin-redis"))
            .args(["up", "-f"])
            .arg(manifest)
            .arg("-L")
            .arg(dir.path().join("logs"))
            .args(extra)
            .env("SPIN_REDIS_CACHE_DIR", cache)
            .env("SPIN_REDIS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        Up { child, dir }
    }

    /// Bytes written so far to `<component>_stdout.txt`.
    pub fn log_len_of(&self, component: &str) -> u64 {
        std::fs::metadata(self.dir.path().join(format!("logs/{component}_stdout.txt")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub fn log_len(&self) -> u64 {
        self.log_len_of("bench")
    }

    /// Peak resident memory (`VmHWM`) of the process so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Peak RSS (KiB), then SIGTERM, wait, and the runtime's own summary
    /// line (`received N, ok N, ...`).
    pub fn finish(self) -> (u64, String) {
        let rss = self.peak_rss_kib();
        let stderr = self.stop();
        let summary = stderr
            .lines()
            .find_map(|l| l.strip_prefix("spin-redis: "))
            .filter(|l| l.starts_with("received"))
            .unwrap_or("no summary")
            .to_string();
        (rss, summary)
    }

    /// Waits until the log of component `bench` holds `expected` bytes or
    /// has not grown for `quiet` (drops); returns its length and when it
    /// last grew.
    pub fn wait_output(&self, expected: u64, quiet: Duration) -> (u64, Instant) {
        let mut last_len = 0;
        let mut last_change = Instant::now();
        wait_for("every message handled", Duration::from_secs(600), || {
            let len = self.log_len();
            if len != last_len {
                last_len = len;
                last_change = Instant::now();
            }
            len >= expected || last_change.elapsed() > quiet
        });
        (last_len, last_change)
    }

    /// SIGTERM, wait, and what it wrote on stderr.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }
}

/// MiB of a KiB figure, for the table.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The table: every row with its ratio to a baseline of the same run.
#[derive(Default)]
pub struct Report {
    rows: Vec<[String; 3]>,
    /// Baselines by name: their figure and how the table names them.
    baselines: HashMap<&'static str, (f64, String)>,
}

impl Report {
    /// Records a baseline (NaN when its part did not run).
    pub fn baseline(&mut self, name: &'static str, figure: f64, shown: impl Into<String>) {
        self.baselines.insert(name, (figure, shown.into()));
    }

    /// A row that is itself a baseline (its ratio column says so).
    pub fn base(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.push(what.into(), value.into(), "baseline".into());
    }

    /// A row and `figure` divided by baseline `name`'s figure (a rate, a
    /// time or a size, in the baseline's unit).
    pub fn row(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        figure: f64,
        name: &str,
    ) {
        let ratio = match self.baselines.get(name) {
            Some((b, shown)) if b.is_finite() && *b != 0.0 && figure.is_finite() => {
                format!("{:.2}x {shown}", figure / b)
            }
            Some((_, shown)) => format!("n/a ({shown} not measured)"),
            None => format!("n/a (no baseline {name:?})"),
        };
        self.push(what.into(), value.into(), ratio);
    }

    /// A row whose ratio is given by the caller (a growth factor, a share).
    pub fn row_with(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        ratio: impl Into<String>,
    ) {
        self.push(what.into(), value.into(), ratio.into());
    }

    fn push(&mut self, what: String, value: String, ratio: String) {
        eprintln!("  {what:<70} {value}  [{ratio}]");
        self.rows.push([what, value, ratio]);
    }

    /// Prints the markdown table on stdout.
    pub fn print(&self) {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "| measurement | result | ratio to a baseline of this run |\n|---|---|---|"
        )
        .unwrap();
        for [what, value, ratio] in &self.rows {
            writeln!(out, "| {what} | {value} | {ratio} |").unwrap();
        }
    }
}
