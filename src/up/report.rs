//! `up`'s last words: the counters of the run, one line per stream and list
//! trigger, as log lines and (for people) on stderr.
//!
//! Not owned here: stopping anything (see `up`).

use crate::cli::LogFormat;
use crate::source::{list, stream};
use crate::stats::Stats;

/// Logs and prints what the run did.
pub fn report(
    stats: &Stats,
    streams: &[stream::Summary],
    lists: &[list::Summary],
    log_format: LogFormat,
) {
    let s = stats.snapshot();
    tracing::info!(
        received = s.received,
        ok = s.ok,
        failed = s.failed,
        dropped = s.dropped,
        skipped = s.skipped,
        cut_short = s.cut_short,
        "stopped"
    );
    for s in streams {
        tracing::info!(
            stream = %s.stream,
            component = %s.component,
            group = %s.group,
            handled = s.handled,
            retried = s.retried,
            dead_lettered = s.dead_lettered,
            claimed = s.claimed,
            "stream stopped"
        );
    }
    for s in lists {
        tracing::info!(
            list = %s.list,
            component = %s.component,
            consumer = %s.consumer,
            handled = s.handled,
            retried = s.retried,
            dead_lettered = s.dead_lettered,
            recovered = s.recovered,
            resumed = s.resumed,
            handed_back = ?s.handed_back,
            "list stopped"
        );
    }
    if log_format == LogFormat::Text {
        eprintln!("spin-redis: {s}");
        for s in streams {
            eprintln!("spin-redis: {s}");
        }
        for s in lists {
            eprintln!("spin-redis: {s}");
        }
    }
}
