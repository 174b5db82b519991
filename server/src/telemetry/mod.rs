//! Logging: `RUST_LOG` filters, `LOG_FORMAT=json` gives JSON lines.

mod format;
pub mod metrics;
mod writer;

use std::{io::IsTerminal, sync::OnceLock};

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub use format::{TextFields, TextLine};
pub use writer::{BatchedWriter, FlushGuard};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn";

/// Log bytes waiting for the writer thread; beyond this, new lines are dropped (and counted)
/// rather than holding requests up or growing without bound.
const BUFFERED_BYTES: usize = 4 * 1024 * 1024;

/// The writer of the installed subscriber, for its count of dropped lines.
static INSTALLED_WRITER: OnceLock<BatchedWriter> = OnceLock::new();

/// Log lines dropped so far because the output could not keep up (0 before `init`).
pub fn dropped_log_lines() -> u64 {
    INSTALLED_WRITER.get().map_or(0, BatchedWriter::dropped)
}

/// Installs the global subscriber once; later calls (several tests in one process) are no-ops
/// and return `None`. Lines are written to stdout by a thread of their own, so requests never
/// wait on the write; keep the guard until exit, when it writes what is left.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> Option<FlushGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = match BatchedWriter::spawn(std::io::stdout(), BUFFERED_BYTES) {
        Ok(spawned) => spawned,
        Err(err) => {
            eprintln!("warning: no log writer thread ({err}); logging is off");
            return None;
        }
    };
    let registry = tracing_subscriber::registry().with(filter);
    let kept = writer.clone();
    let installed = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .event_format(TextLine {
                        ansi: std::io::stdout().is_terminal(),
                    })
                    .fmt_fields(TextFields)
                    .with_writer(writer),
            )
            .try_init(),
    };
    installed.ok().map(|()| {
        let _ = INSTALLED_WRITER.set(kept);
        guard
    })
}
