//! The switch: the single owner of every connection decision.
//!
//! - `core`: the decisions themselves — admission, replacement, limits, bans, dial scheduling — as a state
//!   machine fed events and `now`, tested without sockets.
//! - `actor`: the task that drives the core: it runs the transport's outlet, dials, connections and their
//!   delivery to reactors, and carries out the core's actions.
//! - [`Switch`] (`handle`): the cloneable handle programs and reactors use; [`SwitchBuilder`] (`builder`): reactor
//!   registration and start; [`SwitchConfig`] (`config`): the settings.
//! - [`dial_queue`] and [`backoff`]: the time-ordered dial queue and the redial schedule the core uses.
//!
//! The rules, in short:
//! - **Limits.** At most `max_inbound` inbound and `max_outbound` outbound peers; persistent peers count against
//!   neither (the TM2 README promises this, its code does not). At most `max_dials_in_flight` dials run at once.
//! - **Persistent peers** are redialed forever with [`Backoff`], always at the operator-configured address, also
//!   after an inbound connection from them dropped.
//! - **Simultaneous dials.** When both sides dial each other, both keep the connection dialed by the lower node ID
//!   and close the other, so each ends with exactly one and nobody redials.

mod actor;
pub mod backoff;
mod builder;
mod config;
pub(crate) mod core;
pub mod dial_queue;
mod handle;

pub use self::core::keep_new_connection;
pub use backoff::Backoff;
pub use builder::{BuildError, SwitchBuilder};
pub use config::{SwitchConfig, SwitchConfigError};
pub use handle::{BanSummary, BroadcastFailure, BroadcastReport, PeerSummary, ProbeError, Switch, SwitchError};
