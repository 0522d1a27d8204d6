//! The run settings an app's manifest may set ([`AppSettings`]); the
//! command line may override each. Plain data: the fuzz build of the
//! manifest parser compiles this file on its own.
//!
//! Not owned here: reading them from the manifest (`manifest`), settling
//! the value in force (`run_config`).

use std::path::PathBuf;
use std::time::Duration;

/// Run settings that the manifest may set; the CLI may override them.
/// `None` means not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSettings {
    pub timeout: Option<Duration>,
    pub max_memory: Option<u64>,
    pub max_output: Option<u64>,
    pub max_payload: Option<u64>,
    pub max_concurrency: Option<usize>,
    pub tls_ca_file: Option<PathBuf>,
}
