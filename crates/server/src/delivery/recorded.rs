//! Headers as an attempt records them: one JSON object of name → value, names sorted, written
//! straight from the header map (no map of owned strings built and serialized per attempt; that
//! was a tenth of a delivery task's instructions).

use std::collections::BTreeMap;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// A JSON object of header names (lower case, sorted) and values. A name sent more than once
/// keeps its last value, as a map from names to values would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedHeaders(String);

impl RecordedHeaders {
    /// The headers of a notification, with credentials written as `***`.
    pub fn request(headers: &HeaderMap) -> Self {
        Self::write(headers, is_sensitive)
    }

    /// A receiver's answer, as it came.
    pub fn response(headers: &HeaderMap) -> Self {
        Self::write(headers, |_| false)
    }

    fn write(headers: &HeaderMap, hide: fn(&str) -> bool) -> Self {
        let mut entries: Vec<(&HeaderName, &HeaderValue)> = headers.iter().collect();
        // Stable: a repeated name keeps its values in order, and the last one is written.
        entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut out = Vec::with_capacity(64 + 48 * entries.len());
        out.push(b'{');
        let mut first = true;
        for (i, (name, value)) in entries.iter().enumerate() {
            if entries.get(i + 1).is_some_and(|next| next.0 == *name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            let name = name.as_str();
            // A header name is a token (lower case letters, digits, `!#$%&'*+-.^_`|~`): nothing
            // in it is escaped in JSON.
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            if hide(name) {
                out.extend_from_slice(b"\"***\"");
            } else {
                value_string(&mut out, value.as_bytes());
            }
        }
        out.push(b'}');
        // Only JSON was written, from `str`s: valid UTF-8.
        Self(String::from_utf8(out).unwrap_or_default())
    }

    /// The JSON text, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The headers as a map (for the emulator's report).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

/// A header value as a JSON string. Values seldom hold anything but printable ASCII without
/// quotes or backslashes: those are copied as they are, after one pass over their bytes (which
/// the compiler runs 16 bytes at a time: without an early exit). Anything else goes through
/// serde_json, bytes that are not UTF-8 replaced.
fn value_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let plain = !bytes.iter().fold(false, |special, &b| {
        special | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        // Writing a string into a vector cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(bytes));
    }
}

/// Whether a request header's value is recorded as `***`: every value but those of the headers
/// Tidings sets itself and that carry no credential. `Authorization` and every header a webhook
/// adds (which may be an API key under any name: `X-Api_Key`, `X-Credential` …) are hidden.
/// `name` is lower case, as every `HeaderName` is.
fn is_sensitive(name: &str) -> bool {
    !matches!(
        name,
        "content-type"
            | "user-agent"
            | "event-type"
            | "webhook-id"
            | "webhook-timestamp"
            | "webhook-signature"
            | "host"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_custom_headers_are_redacted_in_recorded_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        h.insert("x-api-key", HeaderValue::from_static("k"));
        h.insert("x-api_key", HeaderValue::from_static("k2"));
        h.insert("x-credential", HeaderValue::from_static("c"));
        h.insert("x-request-id", HeaderValue::from_static("r1"));
        h.insert("webhook-signature", HeaderValue::from_static("v1,abc"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let r = RecordedHeaders::request(&h).to_map();
        for hidden in [
            "authorization",
            "x-api-key",
            "x-api_key",
            "x-credential",
            "x-request-id",
        ] {
            assert_eq!(r[hidden], "***", "{hidden}");
        }
        assert_eq!(r["webhook-signature"], "v1,abc");
        assert_eq!(r["content-type"], "application/json");
        assert_eq!(r.len(), 7);
        let answer = RecordedHeaders::response(&h).to_map();
        assert_eq!(
            answer["authorization"], "Bearer abc",
            "answers are kept whole"
        );
    }

    /// The same text a map of the headers would serialize to: names sorted, JSON escapes, the
    /// last of repeated values, non-UTF-8 bytes replaced.
    #[test]
    fn the_text_is_what_a_sorted_map_would_serialize() {
        let mut h = HeaderMap::new();
        h.insert("x-b", HeaderValue::from_static("quote \" and \\ slash"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        h.append("set-cookie", HeaderValue::from_static("b=2"));
        h.insert("x-a", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        h.insert("x-c", HeaderValue::from_bytes(b"tab\there").unwrap());
        h.insert("x-d", HeaderValue::from_static("plain/ascii; q=1"));
        h.insert(
            "x-e",
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        h.insert(
            HeaderName::from_static("x-!#$%&'*+.^_`|~09"),
            HeaderValue::from_static("token"),
        );
        let recorded = RecordedHeaders::response(&h);
        let mut map = BTreeMap::new();
        for (k, v) in &h {
            map.insert(
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
        assert_eq!(recorded.as_str(), serde_json::to_string(&map).unwrap());
        assert_eq!(recorded.to_map()["set-cookie"], "b=2");
        assert_eq!(RecordedHeaders::request(&HeaderMap::new()).as_str(), "{}");
    }
}
