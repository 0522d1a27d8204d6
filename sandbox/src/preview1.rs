//! WASI preview1 in a linker, with file calls in place and sleeps that
//! never hold a thread.
//!
//! wasmtime-wasi runs WASI file calls either in place on the calling thread
//! or through tokio's blocking pool (a thread hand-off per call: a handler
//! that reads one file paid ~0.5 ms for it). In place is what a handler
//! wants, and safe here: the files are read-only mounts. But the same switch
//! (`allow_blocking_current_thread`) makes wasmtime-wasi serve a preview1
//! `poll_oneoff` on one relative clock, the way libc's `sleep`, Go's
//! `time.Sleep` and Rust's `thread::sleep` compile, with
//! `std::thread::sleep`: a handler could then hold a handler thread past its
//! deadline, out of reach of the timer (`limits::with_deadline`).
//!
//! So [`add_to_linker`] adds wasmtime-wasi's preview1 and shadows
//! `poll_oneoff`: every call that would reach that sleep is decided here,
//! whatever its arguments. A well-formed one becomes an asynchronous tokio
//! sleep, which the deadline cancels; one whose pointers are out of bounds
//! or misaligned is refused at once with `fault` (wasmtime-wasi would sleep
//! first and look at the `events` pointer after: a three-day sleep with a
//! bad pointer held a thread for three days). Every other call goes to
//! wasmtime-wasi's own implementation, which serves it asynchronously. Every preview1 linker must come from here, since the
//! sandbox's contexts allow blocking (see `sandbox`).
//!
//! Not owned here: the WASI context itself (see `sandbox`).

use std::time::Duration;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

/// A preview1 subscription: userdata u64, tag u8 at 8, then for a clock the
/// clock id u32 at 16, the timeout u64 at 24, the precision u64 at 32 and
/// the flags u16 at 40.
const SUBSCRIPTION_SIZE: usize = 48;
/// A preview1 event: userdata u64, error u16 at 8, type u8 at 10, then
/// `nbytes` u64 at 16 and flags u16 at 24.
const EVENT_SIZE: usize = 32;
const TAG_CLOCK: u8 = 0;
const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1;
/// `realtime`, `monotonic`, `process_cputime_id`, `thread_cputime_id`.
const MAX_CLOCK_ID: u32 = 3;
/// preview1 errnos (`wasi_snapshot_preview1.witx`).
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// Adds WASI preview1 to `linker`, with `poll_oneoff` made asynchronous
/// where wasmtime-wasi would block (see the module docs).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiP1Ctx,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, get)?;
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, (subs, events, nsubs, nevents): (i32, i32, i32, i32)| {
            Box::new(async move {
                let memory = caller
                    .get_export("memory")
                    .and_then(|e| e.into_memory())
                    .ok_or_else(|| wasmtime::Error::msg("missing required memory export"))?;
                match classify(memory.data(&caller), subs, events, nsubs, nevents) {
                    Shadowed::Sleep(sleep) => {
                        // tokio's timer counts whole milliseconds: a zero
                        // sleep (a guest's `sched_yield` by another name)
                        // would wait for the next one, so it only yields.
                        if sleep.timeout.is_zero() {
                            tokio::task::yield_now().await;
                        } else {
                            tokio::time::sleep(sleep.timeout).await;
                        }
                        let mem = memory.data_mut(&mut caller);
                        sleep.write_event(mem);
                        return Ok(ERRNO_SUCCESS);
                    }
                    Shadowed::Errno(errno) => return Ok(errno),
                    Shadowed::LeftToWasmtimeWasi => {}
                }
                let (mem, state) = memory.data_and_store_mut(&mut caller);
                let mut mem = wiggle::GuestMemory::Unshared(mem);
                wasmtime_wasi::p1::wasi_snapshot_preview1::poll_oneoff(
                    get(state),
                    &mut mem,
                    subs,
                    events,
                    nsubs,
                    nevents,
                )
                .await
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What the shadow does with one `poll_oneoff` call.
#[derive(Debug, PartialEq, Eq)]
enum Shadowed {
    /// A sleep on one relative clock, served asynchronously here.
    Sleep(Sleep),
    /// Refused at once with this errno, without waiting.
    Errno(i32),
    /// Left to wasmtime-wasi, which serves it without blocking the thread
    /// (several subscriptions, an absolute clock, a file descriptor: all
    /// through its asynchronous `poll`).
    LeftToWasmtimeWasi,
}

/// One relative sleep, with where its event goes.
#[derive(Debug, PartialEq, Eq)]
struct Sleep {
    timeout: Duration,
    userdata: u64,
    events: usize,
    nevents: usize,
}

/// Decides a `poll_oneoff` call. wasmtime-wasi 48 (`p1.rs`) serves exactly
/// one subscription on a relative clock with `std::thread::sleep`, *before*
/// it looks at `events` or `nevents`, whatever the clock id; every other
/// call goes through its asynchronous poll (absolute clocks become
/// `subscribe_instant`, several clocks one `poll`). So every call that
/// reaches that sleep is decided here: served by an asynchronous sleep, or,
/// when a pointer is out of bounds or misaligned, or the subscription is
/// malformed, refused at once (a bad pointer is the guest's error: `fault`;
/// a bad clock id or flag: `inval`, as wasmtime-wasi would say).
fn classify(mem: &[u8], subs: i32, events: i32, nsubs: i32, nevents: i32) -> Shadowed {
    if nsubs != 1 {
        return Shadowed::LeftToWasmtimeWasi;
    }
    let [subs, events, nevents] = [subs, events, nevents].map(|p| p as u32 as usize);
    let fits = |at: usize, len: usize, align: usize| {
        at.is_multiple_of(align) && at.checked_add(len).is_some_and(|end| end <= mem.len())
    };
    if !fits(subs, SUBSCRIPTION_SIZE, 8) {
        return Shadowed::Errno(ERRNO_FAULT);
    }
    let sub = &mem[subs..subs + SUBSCRIPTION_SIZE];
    let u64_at = |b: &[u8], at: usize| {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("invariant: 8 bytes"))
    };
    let flags = u16::from_le_bytes([sub[40], sub[41]]);
    if sub[8] != TAG_CLOCK || flags & SUBSCRIPTION_CLOCK_ABSTIME != 0 {
        return Shadowed::LeftToWasmtimeWasi;
    }
    let clock = u32::from_le_bytes(sub[16..20].try_into().expect("invariant: 4 bytes"));
    if clock > MAX_CLOCK_ID || flags & !SUBSCRIPTION_CLOCK_ABSTIME != 0 {
        return Shadowed::Errno(ERRNO_INVAL);
    }
    if !fits(events, EVENT_SIZE, 8) || !fits(nevents, 4, 4) {
        return Shadowed::Errno(ERRNO_FAULT);
    }
    Shadowed::Sleep(Sleep {
        timeout: Duration::from_nanos(u64_at(sub, 24)),
        userdata: u64_at(sub, 0),
        events,
        nevents,
    })
}

impl Sleep {
    /// Writes what wasmtime-wasi writes after its sleep: one clock event,
    /// no error.
    fn write_event(&self, mem: &mut [u8]) {
        // Checked in `classify`; the memory can only have grown.
        let event = &mut mem[self.events..self.events + EVENT_SIZE];
        event.fill(0);
        event[0..8].copy_from_slice(&self.userdata.to_le_bytes());
        // error 0 (success) at 8, type 0 (clock) at 10, nbytes 1 at 16.
        event[16..24].copy_from_slice(&1u64.to_le_bytes());
        mem[self.nevents..self.nevents + 4].copy_from_slice(&1u32.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(tag: u8, flags: u16, timeout: u64) -> Vec<u8> {
        let mut mem = vec![0u8; 256];
        mem[0..8].copy_from_slice(&7u64.to_le_bytes());
        mem[8] = tag;
        mem[24..32].copy_from_slice(&timeout.to_le_bytes());
        mem[40..42].copy_from_slice(&flags.to_le_bytes());
        mem
    }

    fn sleep(mem: &[u8], events: i32, nsubs: i32, nevents: i32) -> Sleep {
        match classify(mem, 0, events, nsubs, nevents) {
            Shadowed::Sleep(s) => s,
            other => panic!("expected a sleep, got {other:?}"),
        }
    }

    #[test]
    fn one_relative_clock_is_slept_here_and_its_event_written() {
        let mem = subscription(TAG_CLOCK, 0, 5_000);
        let s = sleep(&mem, 64, 1, 128);
        assert_eq!(s.timeout, Duration::from_micros(5));
        assert_eq!(s.userdata, 7);
        let mut out = mem.clone();
        s.write_event(&mut out);
        assert_eq!(&out[64..72], &7u64.to_le_bytes());
        assert_eq!(&out[72..80], &[0u8; 8]);
        assert_eq!(&out[80..88], &1u64.to_le_bytes());
        assert_eq!(&out[128..132], &1u32.to_le_bytes());
    }

    #[test]
    fn only_calls_that_never_block_are_left_to_wasmtime_wasi() {
        // Absolute time, an fd subscription, two subscriptions: served by
        // wasmtime-wasi's asynchronous poll.
        let abs = subscription(TAG_CLOCK, SUBSCRIPTION_CLOCK_ABSTIME, 5_000);
        assert_eq!(classify(&abs, 0, 64, 1, 128), Shadowed::LeftToWasmtimeWasi);
        let fd = subscription(1, 0, 0);
        assert_eq!(classify(&fd, 0, 64, 1, 128), Shadowed::LeftToWasmtimeWasi);
        let mem = subscription(TAG_CLOCK, 0, 5_000);
        assert_eq!(classify(&mem, 0, 64, 2, 128), Shadowed::LeftToWasmtimeWasi);
    }

    #[test]
    fn a_relative_sleep_with_a_bad_pointer_is_refused_at_once() {
        // wasmtime-wasi would sleep the thread first and look at `events`
        // after: these must never reach it.
        let days = 3 * 24 * 3600 * 1_000_000_000u64;
        let mem = subscription(TAG_CLOCK, 0, days);
        let fault = Shadowed::Errno(ERRNO_FAULT);
        assert_eq!(classify(&mem, 0, 240, 1, 128), fault, "events past the end");
        assert_eq!(classify(&mem, 0, -16, 1, 128), fault, "events at 4 GiB");
        assert_eq!(classify(&mem, 0, 60, 1, 128), fault, "events misaligned");
        assert_eq!(classify(&mem, 0, 64, 1, 254), fault, "nevents past the end");
        assert_eq!(classify(&mem, 0, 64, 1, 130), fault, "nevents misaligned");
        assert_eq!(
            classify(&mem, 240, 64, 1, 128),
            fault,
            "subscription past the end"
        );
        // A clock id or flag wasmtime-wasi cannot read: `inval`, at once.
        let mut bad_clock = mem.clone();
        bad_clock[16] = 9;
        assert_eq!(
            classify(&bad_clock, 0, 64, 1, 128),
            Shadowed::Errno(ERRNO_INVAL)
        );
        let bad_flags = subscription(TAG_CLOCK, 4, days);
        assert_eq!(
            classify(&bad_flags, 0, 64, 1, 128),
            Shadowed::Errno(ERRNO_INVAL)
        );
    }
}
