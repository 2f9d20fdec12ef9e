//! Log lines a caller cannot forge: every field value of the text log is written with its
//! control characters escaped (`\n`, `\r`, `\u{1b}` …), so a client id with a newline cannot
//! start a line of its own and an ANSI escape cannot repaint the terminal. The JSON log needs
//! nothing: JSON strings escape control characters already.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// `text` with every control character written as an escape (`\n`, `\t`, `\u{1b}`).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The text log's field formatter: `name=value` pairs separated by spaces, the message first
/// and bare, every value escaped by [`escape_controls`].
pub fn fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field, value| {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert_eq!(escape_controls("plain id-1"), "plain id-1");
        assert_eq!(
            escape_controls("x\n2026-12-07T00:00:00Z INFO forged"),
            "x\\n2026-12-07T00:00:00Z INFO forged"
        );
        assert_eq!(escape_controls("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_controls("tab\there"), "tab\\there");
    }

    /// A log line as the text log writes it, for an event logged by `log`.
    fn logged(log: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(fields())
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_field_with_a_newline_or_an_escape_stays_on_its_line() {
        let forged = "evil\n2026-12-07T00:00:00Z  INFO admin signed in\u{1b}[2J";
        let text = logged(|| {
            tracing::info!(client_id = %forged, "token request refused");
        });
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("client_id=evil\\n2026"), "{text:?}");
        assert!(text.contains("token request refused"), "{text:?}");
    }
}
