//! From a received message to running handlers, in three parts:
//! - [`queues`]: the routing table, one bounded queue and worker per
//!   pub/sub trigger, the queued-memory budget and drop accounting, the
//!   shutdown drain; routes are added and removed while running (a reload);
//! - [`capacity`]: how many handlers run at once (a trigger's own bound,
//!   one reserved slot per trigger, a pool shared by all);
//! - [`run`]: running one delivery and recording how it ended;
//! - `route_queue`: the queue of one trigger (no heap while empty).
//!
//! Stream and list triggers have no queue (Redis is the queue): their source
//! holds a [`Capacity`], reads only as many entries as it holds slots for,
//! and runs each through [`run_delivery`], like a queued delivery.
//!
//! Not owned here: Redis (see `source`) and running wasm (see `executor`).

pub mod capacity;
pub mod queues;
mod route_queue;
pub mod run;

pub use capacity::{Capacity, Permits};
pub use queues::{
    Dispatcher, HandlerSlot, QUEUED_OVERHEAD, RouteId, RouteSpec, Shared, drain, queued_cost,
};
pub use run::{Ran, run_delivery};
