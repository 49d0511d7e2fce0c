//! `[admin]`: the admin HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ledgerwire_reactors::ilp_over_http::HttpLimits;
use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, http_limits, relative_path, socket_addr};

/// `[admin]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSection {
    /// Admin API address.
    pub laddr: String,
    /// Bearer token file, relative to home.
    pub token_file: String,
    /// Most open connections.
    pub max_connections: u64,
    /// Time a client has to send its request headers.
    pub header_read_timeout: String,
    /// Idle connections are closed after this.
    pub idle_timeout: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            laddr: "127.0.0.1:26658".into(),
            token_file: "config/admin_token".into(),
            max_connections: 64,
            header_read_timeout: "5s".into(),
            idle_timeout: "60s".into(),
        }
    }
}

pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: Some("admin"),
    doc: "The admin HTTP API.",
    keys: &[
        Key {
            name: "laddr",
            kind: Kind::Address,
            doc: "Admin HTTP API address; keep it on loopback or behind a firewall (port 0 = any free port).",
        },
        Key {
            name: "token_file",
            kind: Kind::Path,
            doc: "File with the bearer token every admin request must present.",
        },
        Key { name: "max_connections", kind: Kind::Integer, doc: "Most open connections; more are closed at once." },
        Key {
            name: "header_read_timeout",
            kind: Kind::Duration,
            doc: "Time a client has to send its request headers; slower ones are closed.",
        },
        Key { name: "idle_timeout", kind: Kind::Duration, doc: "Connections idle this long are closed." },
    ],
};

/// The resolved `[admin]` settings.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Where the API listens.
    pub laddr: SocketAddr,
    /// The bearer token file.
    pub token_file: PathBuf,
    /// Listener limits.
    pub limits: HttpLimits,
}

impl AdminSection {
    pub(crate) fn resolve(&self, home: &Path) -> Result<AdminConfig, ConfigError> {
        let limits = http_limits(
            ["admin.max_connections", "admin.header_read_timeout", "admin.idle_timeout"],
            (self.max_connections, &self.header_read_timeout, &self.idle_timeout),
            10_000,
            16 * 1024,
        )?;
        Ok(AdminConfig {
            laddr: socket_addr("admin.laddr", &self.laddr)?,
            token_file: relative_path("admin.token_file", &self.token_file, home)?,
            limits,
        })
    }
}
