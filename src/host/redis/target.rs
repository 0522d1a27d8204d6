//! Where one guest command goes: the pooled or the dedicated connection,
//! and the message's budget of what it may receive (see `reply_bounds`).
//! Sending a command, measuring its reply, refusing ahead of time what a
//! probe (see `probe`) says would be too large, and naming a failure in the
//! WIT's vocabulary all happen here, once for every interface version.
//!
//! Not owned here: which commands exist (`ops`), the pool (`pool`).

use super::pool::Pooled;
use super::{probe, v3};
use crate::host::reply_bounds::{self, MessageBudget};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value};
use std::sync::Arc;

/// A connection to send one command on, and the message's budget of what
/// it may receive (see `reply_bounds`).
#[derive(Clone)]
pub struct Target {
    link: Link,
    budget: Arc<MessageBudget>,
}

#[derive(Clone)]
enum Link {
    Pooled(Pooled),
    Dedicated(MultiplexedConnection),
}

impl Target {
    pub fn pooled(c: Pooled, budget: &Arc<MessageBudget>) -> Target {
        Target {
            link: Link::Pooled(c),
            budget: budget.clone(),
        }
    }

    pub fn dedicated(c: MultiplexedConnection, budget: &Arc<MessageBudget>) -> Target {
        Target {
            link: Link::Dedicated(c),
            budget: budget.clone(),
        }
    }

    async fn send(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match &mut self.link {
            Link::Pooled(c) => cmd.query_async(c).await,
            Link::Dedicated(c) => cmd.query_async(c).await,
        }
    }

    /// Sends `cmd`; a reply past `max_reply` or the message's total
    /// is refused (measured once read, see `probe`).
    pub async fn query<T: FromRedisValue>(mut self, cmd: &Cmd) -> Result<T, v3::Error> {
        let value = self.send(cmd).await.map_err(command_error)?;
        self.budget
            .admit("the reply", probe::measure(&value))
            .map_err(v3::Error::Other)?;
        T::from_redis_value(value).map_err(|e| command_error(e.into()))
    }

    /// Refuses `command args` before it is sent when its probe (see
    /// `probe`) says the reply would pass `max_reply`.
    /// Only on a shared connection: a dedicated one may be inside `MULTI`,
    /// where the probe would be queued into the guest's transaction (its
    /// replies are measured once read).
    pub async fn probe(&mut self, command: &str, args: &[Vec<u8>]) -> Result<(), v3::Error> {
        if matches!(self.link, Link::Dedicated(_)) {
            return Ok(());
        }
        let Some(p) = probe::probe(command, args) else {
            return Ok(());
        };
        let mut cmd = redis::cmd(p.command);
        if let Some(key) = &p.key {
            cmd.arg(key);
        }
        // A probe that fails (a wrong type, a command the server lacks)
        // decides nothing: the command itself says what is wrong.
        let Ok(Value::Int(n)) = self.send(&cmd).await else {
            return Ok(());
        };
        let at_least = p.lower_bound(n);
        let max_reply = self.budget.limits().max_reply;
        if at_least > max_reply {
            return Err(v3::Error::Other(reply_bounds::would_be_too_large(
                &format!("the reply to {}", command.to_ascii_uppercase()),
                at_least,
                max_reply,
            )));
        }
        Ok(())
    }
}

/// The error a command failed with, in the v3 (and v2) vocabulary.
pub fn command_error(e: RedisError) -> v3::Error {
    let type_error = e.kind() == ErrorKind::UnexpectedReturnType
        || e.code() == Some("WRONGTYPE")
        || e.detail()
            .is_some_and(|d| d.contains("not an integer") || d.contains("not a valid float"));
    if type_error {
        v3::Error::TypeError
    } else if matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
    ) {
        // Never followed: the node it names was not checked against
        // `allowed_outbound_hosts`, and a server must not steer a guest.
        v3::Error::Other(format!(
            "{e}: a component's outbound redis does not follow cluster redirects; address the node that holds the key"
        ))
    } else {
        v3::Error::Other(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_are_told_apart() {
        let wrongtype = RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "response was of incompatible type",
        ));
        assert!(matches!(command_error(wrongtype), v3::Error::TypeError));
        let other = RedisError::from((ErrorKind::Io, "connection reset"));
        assert!(matches!(command_error(other), v3::Error::Other(_)));
    }
}
