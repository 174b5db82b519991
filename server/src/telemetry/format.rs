//! The text log line: tracing-subscriber's layout (time, level, spans, target, message,
//! fields), written with a fraction of its instructions.
//!
//! The stock formatter goes through `core::fmt` for every piece, styles each one (even with
//! colours off), quotes every string field and formats the whole timestamp each time: about
//! 18,000 instructions per line, more than the rest of a `/health` request. This one writes
//! strings as they are, quotes only values that need it, and formats the date part of the
//! timestamp once a second per thread.

use std::{cell::RefCell, fmt, time::SystemTime};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    field::{RecordFields, Visit},
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

/// Formats events as one text line each; `ansi` colours the level.
pub struct TextLine {
    pub ansi: bool,
}

/// Formats fields as `name=value`, the message bare.
pub struct TextFields;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_timestamp(&mut writer)?;
        let metadata = event.metadata();
        let (colour, level) = level_style(*metadata.level());
        if self.ansi {
            write!(writer, " \x1b[{colour}m{level}\x1b[0m ")?;
        } else {
            writer.write_char(' ')?;
            writer.write_str(level)?;
            writer.write_char(' ')?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_str(": ")?;
            }
        }
        writer.write_str(metadata.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// Padded to five characters, as the stock formatter does.
fn level_style(level: Level) -> (u8, &'static str) {
    match level {
        Level::ERROR => (31, "ERROR"),
        Level::WARN => (33, " WARN"),
        Level::INFO => (32, " INFO"),
        Level::DEBUG => (34, "DEBUG"),
        Level::TRACE => (35, "TRACE"),
    }
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS` text.
    static DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// RFC 3339 in UTC with microseconds: `2026-12-01T20:53:45.382329Z`.
fn write_timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    DATE.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let date = chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
            *text = date.format("%Y-%m-%dT%H:%M:%S").to_string();
            *cached = seconds;
        }
        writer.write_str(text)
    })?;
    write!(writer, ".{:06}Z", since_epoch.subsec_micros())
}

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldWriter<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl FieldWriter<'_> {
    /// Writes the separator and `name=` (nothing for the message), then `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.writer.write_char(' ')?;
            }
            self.first = false;
            if field.name() != "message" {
                self.writer.write_str(field.name())?;
                self.writer.write_char('=')?;
            }
            value(&mut self.writer)
        })();
    }
}

/// Whether a string value must be quoted to be read back as one value.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == b'\\' || b == 0x7f)
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let bare = field.name() == "message" || !needs_quotes(value);
        self.field(field, |writer| {
            if bare {
                writer.write_str(value)
            } else {
                write!(writer, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |writer| write!(writer, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |writer| write!(writer, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |writer| {
            writer.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = value.to_string();
        self.record_str(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |writer| write!(writer, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{fmt::MakeWriter, prelude::*};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn a_line_has_the_time_level_spans_target_message_and_fields() {
        let output = Captured::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(TextLine { ansi: false })
                .fmt_fields(TextFields)
                .with_writer(output.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", id = "abc-1");
            span.in_scope(|| {
                tracing::info!(
                    method = %"GET",
                    path = "/api/v1/health",
                    spaced = "two words",
                    empty = "",
                    status = 200u16,
                    ok = true,
                    "request finished"
                );
            });
        });
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let (timestamp, rest) = text.split_once(' ').unwrap();
        assert_eq!(
            timestamp.len(),
            "2026-12-01T20:53:45.382329Z".len(),
            "{text}"
        );
        assert!(
            timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{text}"
        );
        assert_eq!(
            rest,
            " INFO request{id=abc-1}: server::telemetry::format::tests: request finished \
             method=GET path=/api/v1/health spaced=\"two words\" empty=\"\" status=200 ok=true\n"
        );
    }
}
