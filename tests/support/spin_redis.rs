//! The real `spin-redis` binary under test: `spin-redis up` as a child
//! process with its own log folder, stdout, stderr and compile cache
//! (`SpinRedis`), waiting on what it logged, and one-shot runs of other
//! commands (`run`, `invoke_with`, a start-up `refusal`). Does not own
//! writing manifests (`app`).

use super::{
    PATIENCE, Redis, START_UP_PATIENCE, failures, manifest, v1_component, v1_head, wait_until,
    wait_until_within,
};
use std::io::Read as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
        Self::launch("up", manifest, extra, env, None)
    }

    /// Starts `spin-redis <command> -f manifest` (`up` or `watch`) with a
    /// fresh log folder.
    pub fn spawn_command(
        command: &str,
        manifest: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> SpinRedis {
        Self::launch(command, manifest, extra, env, None)
    }

    /// Like [`SpinRedis::spawn`], with the log files in `log_dir`, which the
    /// test may have prepared (a log file that is a pipe, say).
    pub fn spawn_logging_to(manifest: &Path, extra: &[&str], log_dir: &Path) -> SpinRedis {
        Self::launch("up", manifest, extra, &[], Some(log_dir))
    }

    /// Spawns `spin-redis <command>` (`up` or `watch`) with its stdout,
    /// stderr and compile cache in a fresh folder, logging to `log_dir` or
    /// to that folder's `logs`.
    fn launch(
        command: &str,
        manifest: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        log_dir: Option<&Path>,
    ) -> SpinRedis {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log_dir = log_dir.map_or_else(|| dir.path().join("logs"), Path::to_path_buf);
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
            .stdout(std::fs::File::create(&stdout_path).expect("create stdout.txt"))
            .stderr(std::fs::File::create(&stderr_path).expect("create stderr.txt"))
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

    /// Spawns `spin-redis up` (see [`SpinRedis::spawn`]) and waits until it
    /// logs that it is reading its `kind` (`stream`, `list`) source.
    pub fn reading(manifest: &Path, extra: &[&str], kind: &str) -> SpinRedis {
        let s = Self::spawn(manifest, extra);
        let line = format!("reading the {kind}");
        wait_until_within(&format!("spin-redis {line}"), START_UP_PATIENCE, || {
            assert!(s.is_running(), "spin-redis exited early:\n{}", s.stderr());
            s.stderr().contains(&line)
        });
        s
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

    /// Asserts that spin-redis's stderr so far does not contain `needle`
    /// (`why` says what its presence would mean).
    pub fn assert_not_logged(&self, needle: &str, why: &str) {
        let err = self.stderr();
        assert!(!err.contains(needle), "{why}:\n{err}");
    }

    /// Waits until each log `(file, needle)` contains its needle, in order.
    pub fn wait_logs(&self, logs: &[(&str, &str)]) {
        for (file, needle) in logs {
            self.wait_log(file, needle);
        }
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

    /// [`SpinRedis::stop`], which must end in a clean exit; returns all
    /// spin-redis wrote on stderr (its shutdown summary last).
    pub fn stop_ok(&mut self) -> String {
        assert!(self.stop().success(), "{}", self.stderr());
        self.stderr()
    }

    /// [`SpinRedis::stop_ok`], whose shutdown summary must say `counts`
    /// (such as "received 3, ok 1, failed 2").
    pub fn stop_counting(&mut self, counts: &str) {
        let err = self.stop_ok();
        assert!(err.contains(counts), "the counters at shutdown: {err}");
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

/// Runs the binary to completion with `args`.
pub fn run(args: &[&str]) -> (i32, String, String) {
    run_with_env(args, &[])
}

/// Runs `up` on a one-component app (`x` from `source` on channel `c`, run
/// by `executor`) that start-up must refuse (exit 2), naming the
/// component; returns stderr.
pub fn refusal(source: &Path, executor: &str) -> String {
    let text = v1_head(None, "redis://127.0.0.1:1") + &v1_component("x", source, "c", executor);
    let (_d, m) = manifest(&text);
    let (code, _, err) = run(&["up", "-f", m.to_str().unwrap(), "--no-cache"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("component \"x\""), "{err}");
    err
}

/// [`refusal`], whose stderr must say each of `needles`.
pub fn assert_refused(source: &Path, executor: &str, needles: &[&str]) {
    let err = refusal(source, executor);
    assert!(needles.iter().all(|n| err.contains(n)), "{err}");
}

/// Runs `invoke -f <manifest> <component> <extra...>` to completion.
pub fn invoke_with(manifest: &Path, component: &str, extra: &[&str]) -> (i32, String, String) {
    run(&invoke_args(manifest, component, extra))
}

/// The arguments of `invoke -f <manifest> <component> <extra...>`.
pub fn invoke_args<'a>(manifest: &'a Path, component: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["invoke", "-f", manifest.to_str().unwrap(), component];
    args.extend_from_slice(extra);
    args
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

/// [`wait_until`], but a failure shows spin-redis's stderr as it is then.
pub fn wait_for(s: &SpinRedis, what: &str, mut cond: impl FnMut() -> bool) {
    let waited = std::panic::catch_unwind(AssertUnwindSafe(|| wait_until(what, &mut cond)));
    if waited.is_err() {
        panic!(
            "gave up waiting for: {what}\nspin-redis stderr:\n{}",
            s.stderr()
        );
    }
}

/// Waits for a "handler failed" warning naming `component` and `channel`
/// whose reason contains `reason`, and returns that reason.
pub fn wait_failure(s: &SpinRedis, component: &str, channel: &str, reason: &str) -> String {
    let mut found = None;
    wait_for(
        s,
        &format!(
            "a \"handler failed\" warning for component={component} channel={channel} with a reason containing {reason:?}"
        ),
        || {
            found = failures(&s.stderr(), component, channel)
                .into_iter()
                .find(|r| r.contains(reason));
            found.is_some()
        },
    );
    found.expect("wait_for returned, so a failure was found")
}
