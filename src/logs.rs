//! Per-component logs: `<log-dir>/<id>_stdout.txt` and `<id>_stderr.txt`,
//! appended after every message, and echoed to the terminal with a `[<id>]`
//! prefix on each line (stdout to stdout, stderr to stderr) unless quiet.
//!
//! A message's output is written in one piece under a lock, so the lines of
//! two messages never interleave, in the log file or on the terminal. When a
//! cap cut the output, a line saying so is appended to that log.
//!
//! The files are buffered: a write syscall per message was a tenth of the
//! per-message cost under load. A thread of its own flushes them every
//! [`FLUSH_INTERVAL`] (never the Redis runtime), and [`Logs::shutdown`] at
//! the end, so a log is at most that far behind.
//!
//! The terminal echo never blocks a handler: echo text is appended to a
//! buffer bounded at [`ECHO_QUEUE_BYTES`] that a writer thread takes whole
//! and writes in one go, at most every [`ECHO_INTERVAL`]: a handler pays a
//! copy, not a wake-up and a write per message (which cost a quarter of the
//! throughput). A terminal that stops reading (a paused `| less`, a full
//! pipe) blocks only that thread; once the buffer is full, echo text is
//! dropped and counted (said once in the log, and in the shutdown summary).
//! The log files always get everything.
//!
//! Not owned here: the runtime's own diagnostics (those go through `tracing`
//! to stderr) and capturing the output (the executors do that).

use anyhow::Context as _;
use arc_swap::ArcSwap;
use spin_redis_sandbox::Outcome;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

/// How often the log files are flushed.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Echo text waiting for the terminal, at most.
pub const ECHO_QUEUE_BYTES: usize = 8 << 20;

/// How long the echo writer lets text gather before it writes.
pub const ECHO_INTERVAL: Duration = Duration::from_millis(5);

/// How long shutdown waits for the echo queue to reach a slow terminal.
const ECHO_SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

type LogFile = Mutex<BufWriter<File>>;

/// The files of every component, by id; a reload that adds a component
/// stores a new map (see [`Logs::open_more`]).
type Files = ArcSwap<HashMap<String, Arc<ComponentLog>>>;

/// The open log files of every component, and the terminal echo.
pub struct Logs {
    dir: PathBuf,
    files: Arc<Files>,
    /// `None` when quiet.
    echo: Option<Echo>,
    stop_flusher: Arc<AtomicBool>,
}

/// Text waiting for the terminal.
#[derive(Default)]
struct Pending {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Set at shutdown: the writer writes what is left and ends.
    closed: bool,
}

/// The bounded buffer the terminal writer thread takes from.
struct Echo {
    pending: Arc<(Mutex<Pending>, Condvar)>,
    dropped_bytes: AtomicU64,
    said: AtomicBool,
    done: Mutex<mpsc::Receiver<()>>,
}

struct ComponentLog {
    stdout: LogFile,
    stderr: LogFile,
}

impl ComponentLog {
    /// Opens (appending) `<id>_stdout.txt` and `<id>_stderr.txt` in `dir`.
    fn open(dir: &Path, id: &str) -> anyhow::Result<ComponentLog> {
        let open = |path: PathBuf| -> anyhow::Result<LogFile> {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| {
                    format!("cannot open the log file {:?}", path.display().to_string())
                })?;
            Ok(Mutex::new(BufWriter::with_capacity(64 * 1024, f)))
        };
        Ok(ComponentLog {
            stdout: open(dir.join(format!("{id}_stdout.txt")))?,
            stderr: open(dir.join(format!("{id}_stderr.txt")))?,
        })
    }
}

impl Logs {
    /// Creates `dir` and opens (appending) the two files of each component.
    pub fn open<'a>(
        dir: &Path,
        quiet: bool,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Logs> {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the log folder {:?}",
                dir.display().to_string()
            )
        })?;
        let mut files = HashMap::new();
        for id in ids {
            files.insert(id.to_string(), Arc::new(ComponentLog::open(dir, id)?));
        }
        let files = Arc::new(ArcSwap::from_pointee(files));
        let stop_flusher = Arc::new(AtomicBool::new(false));
        {
            let files = files.clone();
            let stop = stop_flusher.clone();
            std::thread::Builder::new()
                .name("log-flusher".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(FLUSH_INTERVAL);
                        flush_all(&files.load());
                    }
                })
                .context("cannot start the log flusher thread")?;
        }
        let echo = if quiet { None } else { Some(Echo::start()?) };
        Ok(Logs {
            dir: dir.to_path_buf(),
            files,
            echo,
            stop_flusher,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the files of the components in `ids` that have none yet (a
    /// reload added them).
    pub fn open_more<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> anyhow::Result<()> {
        let files = self.files.load();
        let mut more = HashMap::clone(&files);
        for id in ids {
            if !more.contains_key(id) {
                more.insert(id.to_string(), Arc::new(ComponentLog::open(&self.dir, id)?));
            }
        }
        if more.len() > files.len() {
            self.files.store(Arc::new(more));
        }
        Ok(())
    }

    /// Writes out everything buffered.
    pub fn flush(&self) {
        flush_all(&self.files.load());
    }

    /// Writes out what is buffered for component `id` only (before its
    /// stream entries are acknowledged): another component's slow or stuck
    /// log file never holds it up. It may block: call it off the runtimes.
    pub fn flush_component(&self, id: &str) {
        if let Some(log) = self.files.load().get(id) {
            flush_one(id, log);
        }
    }

    /// At shutdown: flushes the files, stops the flusher, and gives the echo
    /// a moment to reach the terminal. Returns the echo bytes dropped because
    /// the terminal did not keep up.
    pub fn shutdown(&self) -> u64 {
        self.stop_flusher.store(true, Ordering::Relaxed);
        self.flush();
        let Some(echo) = &self.echo else { return 0 };
        // Closing the buffer ends the writer once it has written what is
        // left; a terminal that never reads again is not waited for.
        echo.lock().closed = true;
        echo.pending.1.notify_one();
        let _ = echo
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(ECHO_SHUTDOWN_WAIT);
        echo.dropped_bytes.load(Ordering::Relaxed)
    }

    /// Appends one message's output to the component's logs and the terminal.
    pub fn record(&self, id: &str, outcome: &Outcome) {
        let files = self.files.load();
        let Some(log) = files.get(id) else {
            tracing::error!(component = %id, "no log files were opened for this component; its output is lost");
            return;
        };
        self.write(
            id,
            "stdout",
            &log.stdout,
            &outcome.stdout,
            outcome.stdout_cut,
            false,
        );
        self.write(
            id,
            "stderr",
            &log.stderr,
            &outcome.stderr,
            outcome.stderr_cut,
            true,
        );
    }

    fn write(&self, id: &str, stream: &str, file: &LogFile, bytes: &[u8], cut: u64, is_err: bool) {
        if bytes.is_empty() && cut == 0 {
            return;
        }
        let note = (cut > 0).then(|| {
            format!("[spin-redis: {cut} more bytes of {stream} were cut at the output cap]\n")
        });
        {
            // A poisoned lock means another writer panicked; the file handle
            // itself is still usable.
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let written = f.write_all(bytes).and_then(|()| match &note {
                Some(n) => f.write_all(n.as_bytes()),
                None => Ok(()),
            });
            if let Err(e) = written {
                tracing::error!(component = %id, stream, error = %e, "cannot write the component's log file");
            }
        }
        if cut > 0 {
            tracing::warn!(component = %id, stream, cut_bytes = cut, "handler output exceeded the cap and was cut");
        }
        if let Some(echo) = &self.echo {
            echo.send(is_err, id, bytes, note.as_deref());
        }
    }
}

fn flush_all(files: &HashMap<String, Arc<ComponentLog>>) {
    for (id, log) in files {
        flush_one(id, log);
    }
}

fn flush_one(id: &str, log: &ComponentLog) {
    for file in [&log.stdout, &log.stderr] {
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.flush() {
            tracing::error!(component = %id, error = %e, "cannot write the component's log file");
        }
    }
}

impl Echo {
    fn start() -> anyhow::Result<Echo> {
        let pending = Arc::new((Mutex::new(Pending::default()), Condvar::new()));
        let (done_tx, done) = mpsc::channel();
        let shared = pending.clone();
        std::thread::Builder::new()
            .name("echo".into())
            .spawn(move || {
                let (lock, wake) = &*shared;
                let mut out = Vec::new();
                let mut err = Vec::new();
                loop {
                    let closed = {
                        let mut p = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while p.stdout.is_empty() && p.stderr.is_empty() && !p.closed {
                            p = wake.wait(p).unwrap_or_else(|p| p.into_inner());
                        }
                        p.closed
                    };
                    if !closed {
                        // Let more text gather: one write for many messages.
                        std::thread::sleep(ECHO_INTERVAL);
                    }
                    {
                        let mut p = lock.lock().unwrap_or_else(|p| p.into_inner());
                        std::mem::swap(&mut p.stdout, &mut out);
                        std::mem::swap(&mut p.stderr, &mut err);
                    }
                    // The terminal may be gone (a closed pipe); the log file
                    // has it.
                    if !out.is_empty() {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&out).and_then(|()| o.flush());
                        out.clear();
                    }
                    if !err.is_empty() {
                        let _ = std::io::stderr().lock().write_all(&err);
                        err.clear();
                    }
                    if closed
                        && lock
                            .lock()
                            .map_or(true, |p| p.stdout.is_empty() && p.stderr.is_empty())
                    {
                        break;
                    }
                }
                let _ = done_tx.send(());
            })
            .context("cannot start the terminal echo thread")?;
        Ok(Echo {
            pending,
            dropped_bytes: AtomicU64::new(0),
            said: AtomicBool::new(false),
            done: Mutex::new(done),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one message's output (and the cap note, if any), prefixed,
    /// for the terminal, or drops and counts it when the buffer is full.
    /// Never blocks on the terminal.
    fn send(&self, is_err: bool, id: &str, bytes: &[u8], note: Option<&str>) {
        let len = prefixed_len(id, bytes) + note.map_or(0, |n| prefixed_len(id, n.as_bytes()));
        let fits = {
            let mut p = self.lock();
            let fits = !p.closed && p.stdout.len() + p.stderr.len() + len <= ECHO_QUEUE_BYTES;
            if fits {
                let was_empty = p.stdout.is_empty() && p.stderr.is_empty();
                let buf = if is_err { &mut p.stderr } else { &mut p.stdout };
                prefix_lines_into(buf, id, bytes);
                if let Some(n) = note {
                    prefix_lines_into(buf, id, n.as_bytes());
                }
                // The writer waits only when the buffer is empty.
                if was_empty {
                    self.pending.1.notify_one();
                }
            }
            fits
        };
        if !fits {
            self.dropped_bytes.fetch_add(len as u64, Ordering::Relaxed);
            if !self.said.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the terminal is not keeping up with handler output: echo is dropped (and counted) until it does; the log files keep everything"
                );
            }
        }
    }
}

/// The length of `bytes` once [`prefix_lines`] has prefixed it.
fn prefixed_len(id: &str, bytes: &[u8]) -> usize {
    let lines = bytes.split_inclusive(|b| *b == b'\n').count();
    let unterminated = usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"));
    bytes.len() + lines * (id.len() + 3) + unterminated
}

/// Prefixes every line with `[id] `; a last line without a newline gets one.
#[cfg(test)]
fn prefix_lines(id: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefixed_len(id, bytes));
    prefix_lines_into(&mut out, id, bytes);
    out
}

/// [`prefix_lines`], appending to `out`.
fn prefix_lines_into(out: &mut Vec<u8>, id: &str, bytes: &[u8]) {
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        out.push(b'[');
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"] ");
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(prefix_lines("a", b"x\ny"), b"[a] x\n[a] y\n");
        assert_eq!(prefix_lines("a", b"x\n"), b"[a] x\n");
        assert_eq!(prefix_lines("a", b""), b"");
        for text in [&b"x\ny"[..], b"x\n", b"", b"\n\n", b"abc"] {
            assert_eq!(prefixed_len("id", text), prefix_lines("id", text).len());
        }
    }
}
