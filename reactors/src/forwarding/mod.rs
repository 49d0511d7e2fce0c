//! Forwarding placeholder.
pub mod rates;
pub mod routing;
pub mod rules;
