//! The executor-alone rows: instantiate-and-run in a loop through the same
//! `Executor` the runtime uses, no Redis, with one tokio worker and then one
//! per core. The one-worker figure of each subject is the baseline of its
//! end-to-end rows; the trivial module's is the baseline of the others.
//!
//! Not owned here: preparing the subjects (`subjects`).

use crate::harness::Report;
use crate::subjects::{Subject, prepare};
use bytes::Bytes;
use spin_redis::executor::Executor;
use spin_redis::executor::engine::Runtime;
use spin_redis_sandbox::Message;
use std::sync::Arc;
use std::time::Instant;

fn message(payload: Bytes) -> Message<'static> {
    Message {
        channel: "bench",
        address: "redis://127.0.0.1:1",
        payload,
        stream: None,
        origin: None,
    }
}

/// Calls per second with `workers` concurrent loops.
pub fn executor_alone(
    exec: Arc<Executor>,
    payload: fn(usize) -> Vec<u8>,
    calls: usize,
    workers: usize,
) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Warm up (first-touch of pool slots, lazy init).
        for i in 0..200 {
            let o = exec.run(message(payload(i).into())).await;
            assert!(
                o.result.is_ok(),
                "{:?} {}",
                o.result,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let start = Instant::now();
        let per = calls / workers;
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let exec = exec.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        let o = exec.run(message(Bytes::from(payload(w * per + i)))).await;
                        debug_assert!(o.result.is_ok());
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        (per * workers) as f64 / start.elapsed().as_secs_f64()
    })
}

/// One and `cores` workers for every subject; returns the `cores`-worker
/// rates in subject order (the end-to-end rows' baselines).
pub fn rows(
    report: &mut Report,
    rt: &Runtime,
    subjects: &[Subject],
    calls: usize,
    cores: usize,
) -> Vec<f64> {
    let mut all_rates = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let exec = Arc::new(prepare(rt, s));
        let one = executor_alone(exec.clone(), s.payload, calls, 1);
        let all = executor_alone(exec, s.payload, calls, cores);
        let what = format!("executor alone, {}, 1 worker", s.name);
        let value = format!("{one:.0} calls/s = {:.1} µs/call", 1e6 / one);
        if i == 0 {
            report.baseline("alone", one, "trivial module alone, 1 worker");
            report.base(what, value);
        } else {
            report.row(what, value, one, "alone");
        }
        report.row_with(
            format!("executor alone, {}, {cores} workers", s.name),
            format!("{all:.0} calls/s = {:.1} µs/call", 1e6 / all),
            format!("{:.2}x one worker", all / one),
        );
        all_rates.push(all);
    }
    all_rates
}
