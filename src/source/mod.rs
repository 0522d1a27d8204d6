//! Where deliveries come from: Redis pub/sub channels and patterns
//! ([`pubsub`], at-most-once), Redis lists read as reliable queues
//! ([`list`], at-least-once) and Redis Streams consumer groups ([`stream`],
//! at-least-once), on a single server or a Redis Cluster ([`connect`]).
//! What they share: reconnecting, the ping watchdog and lazy command
//! connections ([`reconnect`]); the wait between a failed delivery's
//! attempts ([`retry`]); reading only what a handler slot is free for
//! ([`reading`]); settling handled deliveries in batches ([`batch`]);
//! bringing a subscriber's channels to what a reload wants
//! ([`subscriptions`]). A single server's pub/sub connection is our own
//! ([`subscriber`], its frames parsed by [`resp`]); everything else is
//! redis-rs.
//!
//! All hand their deliveries to the dispatcher (`crate::dispatch`): pub/sub
//! through its queues, streams and lists straight to
//! `dispatch::run_delivery` once a handler slot is held. Not owned here:
//! running handlers.

pub mod batch;
pub mod connect;
pub mod list;
pub mod pubsub;
pub mod reading;
pub mod reconnect;
pub mod resp;
pub mod retry;
pub mod stream;
pub mod subscriber;
pub mod subscriptions;
