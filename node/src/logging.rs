//! Log output for the binary: human-readable or JSON lines on standard error, written by a background thread so
//! logging never blocks the node (a full buffer drops records and reports how many).

use slog::{Drain, Logger, o};

use crate::config::LogFormat;

/// Builds the root logger. Keep the guard alive until exit so buffered records are written.
pub fn logger(format: LogFormat, level: slog::Level) -> (Logger, slog_async::AsyncGuard) {
    logger_to(std::io::stderr(), format, level)
}

/// As [`logger`], writing to `out` (a log file, say).
pub fn logger_to(
    out: impl std::io::Write + Send + 'static,
    format: LogFormat,
    level: slog::Level,
) -> (Logger, slog_async::AsyncGuard) {
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match format {
        LogFormat::Text => {
            let decorator = slog_term::PlainDecorator::new(out);
            Box::new(slog_term::FullFormat::new(decorator).build().fuse())
        }
        LogFormat::Json => Box::new(slog_json::Json::new(out).add_default_keys().build().fuse()),
    };
    let drain = slog::LevelFilter::new(drain, level).fuse();
    let (drain, guard) = slog_async::Async::new(drain)
        .chan_size(8192)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build_with_guard();
    (Logger::root(drain.fuse(), o!()), guard)
}
