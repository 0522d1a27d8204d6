//! Capped, in-memory capture of a guest's stdout or stderr.
//!
//! The guest may write as much as it likes; the first `cap` bytes are kept and
//! the rest is counted, so a flood costs memory proportional to the cap and the
//! log can say how much was cut. Writes always succeed from the guest's point
//! of view: a handler must not fail because its log was full.
//!
//! Not owned here: where the captured bytes go (the `logs` module of
//! `spin-redis`).

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// One capture buffer, shared between the WASI context that writes it and the
/// executor that takes its contents when the run is over.
#[derive(Clone, Debug)]
pub struct CappedOutput {
    inner: Arc<Mutex<Capture>>,
}

#[derive(Debug, Default)]
struct Capture {
    cap: usize,
    kept: BytesMut,
    dropped: u64,
}

impl CappedOutput {
    /// A capture that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CappedOutput {
            inner: Arc::new(Mutex::new(Capture {
                cap,
                kept: BytesMut::new(),
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Capture> {
        // A poisoned lock only means a writer panicked mid-append; the bytes
        // already kept are still valid, so keep going with them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, buf: &[u8]) {
        let mut c = self.lock();
        let room = c.cap.saturating_sub(c.kept.len());
        let keep = room.min(buf.len());
        c.kept.extend_from_slice(&buf[..keep]);
        c.dropped += (buf.len() - keep) as u64;
    }

    /// Takes what was captured so far: the kept bytes and how many were cut.
    pub fn take(&self) -> (Bytes, u64) {
        let mut c = self.lock();
        let dropped = std::mem::take(&mut c.dropped);
        (c.kept.split().freeze(), dropped)
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    // Overridden so that no adapter task is spawned per message: writes go
    // straight into the buffer.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always ready: past the cap bytes are counted, not refused.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_counts_the_rest() {
        let out = CappedOutput::new(5);
        out.append(b"abc");
        out.append(b"defgh");
        let (kept, dropped) = out.take();
        assert_eq!(&kept[..], b"abcde");
        assert_eq!(dropped, 3);
    }
}
