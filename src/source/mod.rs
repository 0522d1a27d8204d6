//! Where deliveries come from: Redis pub/sub channels and patterns
//! ([`pubsub`], at-most-once), Redis lists read as reliable queues
//! ([`list`], at-least-once) and Redis Streams consumer groups ([`stream`],
//! at-least-once), on a single server or a Redis Cluster ([`connect`]).
//!
//! Both hand their deliveries to the dispatcher (`crate::dispatch`): pub/sub
//! through its queues, streams straight to `dispatch::run_delivery` once a
//! handler slot is held. Not owned here: running handlers.

pub mod connect;
pub mod list;
pub mod pubsub;
pub mod stream;
