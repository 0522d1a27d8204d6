//! How a command fails: an error chain and the documented exit code it maps
//! to. `main` prints the chain once and exits with the code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | runtime failure; for `invoke`, the handler returned an error |
//! | 2 | usage, manifest or handler-file problem found before running |

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

pub const RUNTIME: u8 = 1;
pub const USAGE: u8 = 2;

impl Failure {
    /// The user's input (flags, manifest, handler files) is wrong.
    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: USAGE,
            error: error.into(),
        }
    }

    /// Something went wrong while running.
    pub fn runtime(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: RUNTIME,
            error: error.into(),
        }
    }
}
