//! The one wasmtime [`Engine`]: its configuration, the epoch ticker that drives
//! deadlines, and the on-disk compiled-code cache.
//!
//! - **Pooling allocator**, sized from the concurrency bound and the memory
//!   cap, so that an instance costs a slot reuse instead of mmap calls; if the
//!   system refuses the reservation the engine falls back to on-demand
//!   allocation and says so. Each handler slot's share of the pool is
//!   [`SLOT_SHARE`]; a component that needs more in one instance (a
//!   component built from many core modules could otherwise take every
//!   memory slot of the pool in one message) is refused when it is compiled,
//!   at start-up (see [`compile_error()`]).
//! - **Epoch interruption**: a ticker thread bumps the epoch every
//!   [`TICK`]; each tick a running guest yields to its async executor (see
//!   `spin_redis_sandbox::limits`), which is how both fairness and timeouts work.
//! - **Compiled-code cache**: wasmtime's cache, keyed by the wasm's content and
//!   the engine's configuration (so a different wasmtime or setting never
//!   reuses an entry), in `$SPIN_REDIS_CACHE_DIR`, else
//!   `$XDG_CACHE_HOME/spin-redis`, else `~/.cache/spin-redis`. An entry that
//!   does not deserialize is recompiled, never trusted.
//!
//! Not owned here: compiling individual components (the executors do it).

use anyhow::Context as _;
use spin_redis_sandbox::PrepareError;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of deadlines and of yields.
pub const TICK: Duration = Duration::from_millis(10);

/// What one instance of a component may take from the instance pool: its
/// core instances, linear memories and tables. The pool holds this much per
/// handler slot (`max_instances`), so no component can take another's
/// share. Sized so that every example and test guest fits, componentize-py's
/// Python component included (see README, limits table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotShare {
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

pub const SLOT_SHARE: SlotShare = SlotShare {
    core_instances: 16,
    memories: 4,
    tables: 8,
};

/// A component's compile error: wasmtime's words when it needs more than
/// [`SLOT_SHARE`] made clear ([`PrepareError::SlotShare`]: which share it
/// exceeds and that it is refused at start-up), else
/// [`PrepareError::Compile`].
pub fn compile_error(e: &wasmtime::Error) -> PrepareError {
    let e = format!("{e:#}");
    if !e.contains("exceeds the configured maximum") || !e.contains("pooling allocator") {
        return PrepareError::Compile(e);
    }
    PrepareError::SlotShare(format!(
        "needs more of the instance pool than one handler slot's share ({} core instances, {} linear memories, {} tables per instance): {e}",
        SLOT_SHARE.core_instances, SLOT_SHARE.memories, SLOT_SHARE.tables
    ))
}

/// What the engine is sized for.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Instances that may be alive at once (the global concurrency bound).
    pub max_instances: u32,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory: u64,
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The default cache folder (see the module docs).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SPIN_REDIS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("spin-redis"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("spin-redis"))
}

/// An engine and the ticker that keeps its epoch moving.
pub struct Runtime {
    pub engine: Engine,
    pub pooling: bool,
    /// The compiled-code cache, when on: kept to read its hit and miss
    /// counts.
    cache: Option<wasmtime::Cache>,
    /// The compiled-code cache's folder, when on (componentized modules are
    /// cached there too, see `componentize`).
    cache_dir: Option<PathBuf>,
    ticker: Ticker,
}

/// Whether compiling one handler used the compiled-code cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
    Off,
}

impl std::fmt::Display for CacheUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Off => "off",
        })
    }
}

impl Runtime {
    pub fn new(opts: &EngineOptions) -> anyhow::Result<Runtime> {
        let (engine, pooling, cache) = build(opts)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Runtime {
            engine,
            pooling,
            cache,
            cache_dir: opts.cache_dir.clone(),
            ticker,
        })
    }

    /// The compiled-code cache's folder, or `None` with `--no-cache`.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    /// Runs `compile` and tells whether it was served from the cache: any
    /// miss during it (a component holds several modules) is a miss.
    pub fn observe_cache<R>(&self, compile: impl FnOnce() -> R) -> (R, CacheUse) {
        let Some(cache) = &self.cache else {
            return (compile(), CacheUse::Off);
        };
        let (hits, misses) = (cache.cache_hits(), cache.cache_misses());
        let r = compile();
        let used = if cache.cache_misses() > misses {
            CacheUse::Miss
        } else if cache.cache_hits() > hits {
            CacheUse::Hit
        } else {
            // Nothing was compiled through the cache (a WAT text, or an
            // entry wasmtime refused to cache): a compile all the same.
            CacheUse::Miss
        };
        (r, used)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

fn base_config(opts: &EngineOptions) -> anyhow::Result<(Config, Option<wasmtime::Cache>)> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.concurrency_support(true);
    if let Some(dir) = &opts.cache_dir {
        let mut cc = wasmtime::CacheConfig::new();
        cc.with_directory(dir);
        let cache = wasmtime::Cache::new(cc)
            .map_err(wasm_error)
            .with_context(|| {
                format!(
                    "cannot use {:?} as the compiled-code cache",
                    dir.display().to_string()
                )
            })?;
        config.cache(Some(cache.clone()));
        return Ok((config, Some(cache)));
    }
    Ok((config, None))
}

fn build(opts: &EngineOptions) -> anyhow::Result<(Engine, bool, Option<wasmtime::Cache>)> {
    let n = opts.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // A component (Python's, say) holds several core instances, memories and
    // tables: each slot gets a share of each, and one instance may take no
    // more than its share (refused at compile time, see `SLOT_SHARE`).
    let share = SLOT_SHARE;
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(share.core_instances))
        .total_memories(n.saturating_mul(share.memories))
        .total_tables(n.saturating_mul(share.tables))
        .max_core_instances_per_component(share.core_instances)
        .max_memories_per_component(share.memories)
        .max_tables_per_component(share.tables)
        .total_stacks(n)
        .max_memory_size(usize::try_from(opts.max_memory).unwrap_or(usize::MAX))
        // Reset a reused memory (and tables, and async stacks) with memset
        // instead of madvise: madvise takes the process's mmap lock, and the
        // page faults that follow it take it again, which serialised
        // parallel instantiations across cores. With PAGEMAP_SCAN (Linux
        // 6.7+) only the pages a handler dirtied are reset, wherever they
        // are in its memory (a Rust handler's stack sits 1 MiB up), so the
        // reset costs what the handler touched; without it, the lowest
        // bytes are reset whole, so that part stays small.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(if PoolingAllocationConfig::is_pagemap_scan_available() {
            4 << 20
        } else {
            64 << 10
        })
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(1 << 20)
        .decommit_batch_size(n as usize);
    let (mut config, cache) = base_config(opts)?;
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, true, cache)),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the pooling allocator's reservation was refused; falling back to on-demand instance allocation (slower per message)");
            let (config, cache) = base_config(opts)?;
            let engine = Engine::new(&config)
                .map_err(wasm_error)
                .context("cannot create the wasmtime engine")?;
            Ok((engine, false, cache))
        }
    }
}

/// wasmtime's own error type is not a `std::error::Error`; keep its chain as
/// text.
fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

/// Bumps the engine's epoch every [`TICK`] on a plain thread, so that it keeps
/// time even when every async worker is busy.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            // Without a ticker deadlines cannot fire; that is worth shouting
            // about, but handlers still run.
            tracing::error!(error = %e, "cannot start the epoch ticker thread: handler timeouts are disabled");
        }
        Ticker { stop }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
