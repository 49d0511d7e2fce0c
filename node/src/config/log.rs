//! `[log]`: level and format of the node's log.

use serde::{Deserialize, Serialize};

use super::schema::{Key, Kind, SectionSchema};
use super::{ConfigError, invalid};

/// `[log]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: "info".into(), format: "text".into() }
    }
}

pub(crate) const SCHEMA: SectionSchema = SectionSchema {
    name: Some("log"),
    doc: "The node's log, on standard error.",
    keys: &[
        Key { name: "level", kind: Kind::Text, doc: "trace, debug, info, warn, error or critical." },
        Key {
            name: "format",
            kind: Kind::Text,
            doc: "\"text\" for people, \"json\" for machines (the --log-format flag overrides this).",
        },
    ],
};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved `[log]` settings.
#[derive(Clone, Copy, Debug)]
pub struct LogConfig {
    /// Least severe level written.
    pub level: slog::Level,
    /// Output format.
    pub format: LogFormat,
}

impl LogSection {
    pub(crate) fn resolve(&self) -> Result<LogConfig, ConfigError> {
        let level = match self.level.as_str() {
            "trace" => slog::Level::Trace,
            "debug" => slog::Level::Debug,
            "info" => slog::Level::Info,
            "warn" => slog::Level::Warning,
            "error" => slog::Level::Error,
            "critical" => slog::Level::Critical,
            other => {
                return Err(invalid(
                    "log.level",
                    format!("{other:?}: expected trace, debug, info, warn, error or critical"),
                ));
            }
        };
        let format = match self.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("log.format", format!("{other:?}: expected text or json"))),
        };
        Ok(LogConfig { level, format })
    }
}
