//! `[admin]`: the admin HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, relative_path, socket_addr};

/// `[admin]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSection {
    /// Admin API address.
    pub laddr: String,
    /// Bearer token file, relative to home.
    pub token_file: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection { laddr: "127.0.0.1:26658".into(), token_file: "config/admin_token".into() }
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
    ],
};

/// The resolved `[admin]` settings.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// Where the API listens.
    pub laddr: SocketAddr,
    /// The bearer token file.
    pub token_file: PathBuf,
}

impl AdminSection {
    pub(crate) fn resolve(&self, home: &Path) -> Result<AdminConfig, ConfigError> {
        Ok(AdminConfig {
            laddr: socket_addr("admin.laddr", &self.laddr)?,
            token_file: relative_path("admin.token_file", &self.token_file, home)?,
        })
    }
}
