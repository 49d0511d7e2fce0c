//! `[metrics]`: the Prometheus endpoint.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, socket_addr};

/// `[metrics]` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Listen address of `GET /metrics` ("" = off).
    pub laddr: String,
}

pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: Some("metrics"),
    doc: "Prometheus metrics (GET /metrics, no token: keep it on loopback or behind a firewall).",
    keys: &[Key {
        name: "laddr",
        kind: Kind::Address,
        doc: "Where GET /metrics listens, e.g. \"127.0.0.1:26660\"; empty = off.",
    }],
};

/// The resolved `[metrics]` settings.
#[derive(Clone, Copy, Debug)]
pub struct MetricsConfig {
    /// Where to listen, if on.
    pub laddr: Option<SocketAddr>,
}

impl MetricsSection {
    pub(crate) fn resolve(&self) -> Result<MetricsConfig, ConfigError> {
        let laddr = match self.laddr.trim() {
            "" => None,
            a => Some(socket_addr("metrics.laddr", a)?),
        };
        Ok(MetricsConfig { laddr })
    }
}
