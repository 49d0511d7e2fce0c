//! Forwarding placeholder.
pub mod core;
pub mod rates;
pub mod routing;
pub mod rules;
