//! Per-component logs: `<log-dir>/<id>_stdout.txt` and `<id>_stderr.txt`,
//! appended after every message, and echoed to the terminal with a `[<id>]`
//! prefix on each line (stdout to stdout, stderr to stderr) unless quiet.
//!
//! A message's output is written in one piece under a lock, so the lines of
//! two messages never interleave, in the log file or on the terminal. When a
//! cap cut the output, a line saying so is appended to that log.
//!
//! The files are buffered: a write syscall per message was a tenth of the
//! per-message cost under load. `up` calls [`Logs::flush`] every
//! [`FLUSH_INTERVAL`] and at shutdown, so a log is at most that far behind.
//!
//! Not owned here: the runtime's own diagnostics (those go through `tracing`
//! to stderr) and capturing the output (the executors do that).

use anyhow::Context as _;
use spin_redis_compat::Outcome;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How often `up` flushes the log files.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

type LogFile = Mutex<BufWriter<File>>;

/// The open log files of every component.
pub struct Logs {
    dir: PathBuf,
    quiet: bool,
    files: HashMap<String, ComponentLog>,
}

struct ComponentLog {
    stdout: LogFile,
    stderr: LogFile,
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
        let mut files = HashMap::new();
        for id in ids {
            files.insert(
                id.to_string(),
                ComponentLog {
                    stdout: open(dir.join(format!("{id}_stdout.txt")))?,
                    stderr: open(dir.join(format!("{id}_stderr.txt")))?,
                },
            );
        }
        Ok(Logs {
            dir: dir.to_path_buf(),
            quiet,
            files,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes out everything buffered.
    pub fn flush(&self) {
        for (id, log) in &self.files {
            for file in [&log.stdout, &log.stderr] {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = f.flush() {
                    tracing::error!(component = %id, error = %e, "cannot write the component's log file");
                }
            }
        }
    }

    /// Appends one message's output to the component's logs and the terminal.
    pub fn record(&self, id: &str, outcome: &Outcome) {
        let Some(log) = self.files.get(id) else {
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
        if !self.quiet {
            let mut text = prefix_lines(id, bytes);
            if let Some(n) = note {
                text.extend(prefix_lines(id, n.as_bytes()));
            }
            // The terminal may be gone (a closed pipe); the log file has it.
            let _ = if is_err {
                std::io::stderr().lock().write_all(&text)
            } else {
                std::io::stdout().lock().write_all(&text)
            };
        }
    }
}

/// Prefixes every line with `[id] `; a last line without a newline gets one.
pub fn prefix_lines(id: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        out.push(b'[');
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"] ");
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(prefix_lines("a", b"x\ny"), b"[a] x\n[a] y\n");
        assert_eq!(prefix_lines("a", b"x\n"), b"[a] x\n");
        assert_eq!(prefix_lines("a", b""), b"");
    }
}
