//! Sends one notification attempt and classifies what happened. Builds the request exactly as
//! SPEC §5 describes: envelope, `Content-Type`, `User-Agent`, `Event-Type`, Standard Webhooks
//! headers, then the webhook's own headers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hyper::header::{
    AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue,
    USER_AGENT as USER_AGENT_HEADER,
};
use serde_json::{Map, Value};
use tidings_core::event::Event;
use tidings_core::fasthash::HashMap;
use tidings_core::payload::{self, PayloadContext};
use tidings_core::signature;
use tidings_core::webhook::{AuthMode, Toggle, Webhook};

use super::answer_budget::AnswerTooLarge;
use super::outbound::{self, Outbound};
use super::recorded::RecordedHeaders;
use super::ssrf::{AddressPolicy, BlockedAddress, DnsFailure};
use super::target::{Target, UrlCache, target};
use crate::auth::keys::Keys;

/// Lifetime of the bearer token sent to receivers.
const NOTIFICATION_TOKEN_TTL: i64 = 600;
/// A cached bearer token is replaced when less than this is left of it.
const NOTIFICATION_TOKEN_MARGIN: i64 = 60;

/// Response bodies are kept up to this size.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// `User-Agent` of every notification.
pub const USER_AGENT: &str = concat!("Tidings/", env!("CARGO_PKG_VERSION"));

static WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub outcome: Outcome,
    /// The body sent (shared with the request, not copied; the emulator reports it).
    pub request_body: Bytes,
    pub status: Option<u16>,
    /// The headers sent, credentials redacted.
    pub request_headers: RecordedHeaders,
    pub response_headers: RecordedHeaders,
    pub response_body: String,
    pub duration: Duration,
    pub error: Option<String>,
    /// The receiver's `Retry-After` (seconds or an HTTP date), as a wait from now.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    /// An attempt that ended before anything was sent.
    pub fn unsent(outcome: Outcome, error: String) -> Self {
        Self {
            outcome,
            request_body: Bytes::new(),
            status: None,
            request_headers: RecordedHeaders::default(),
            response_headers: RecordedHeaders::default(),
            response_body: String::new(),
            duration: Duration::ZERO,
            error: Some(error),
            retry_after: None,
        }
    }
}

/// Stable outcome codes of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    HttpStatus,
    Timeout,
    Dns,
    Connect,
    Tls,
    BlockedAddress,
    TooLarge,
    /// The answer broke HTTP/1.1 (an unparsable head, a bad length or chunk size).
    Protocol,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::HttpStatus => "http_status",
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::BlockedAddress => "blocked_address",
            Self::TooLarge => "too_large",
            Self::Protocol => "protocol",
        }
    }
}

/// `Authorization` values by webhook id: (audience, `Bearer <token>`, expiry in Unix seconds).
/// Looked up by the id alone, without building a key per delivery; a token for another
/// audience (the URL changed) is signed anew.
type TokenCache = HashMap<String, (Arc<str>, HeaderValue, i64)>;

/// Entries of a cache above which it starts over (URLs are few; this bounds a churn of them).
pub(super) const CACHE_BOUND: usize = 100_000;

/// One notification to send: the event, the webhook, and what the payload options need.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    pub webhook: &'a Webhook,
    pub event: &'a Event,
    pub message_id: &'a str,
    /// The event type's `statusPath`.
    pub status_path: Option<&'a str>,
    /// The event workspace's `fields`.
    pub company_fields: Option<&'a Map<String, Value>>,
}

/// Claims of the bearer token a notification carries (SPEC §5).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct NotificationClaims {
    pub iss: String,
    /// The origin of the webhook URL.
    pub aud: String,
    /// The webhook's workspace.
    pub sub: String,
    pub webhook: String,
    pub iat: i64,
    pub exp: i64,
}

/// The outbound HTTP client: pooled keep-alive connections, no redirects, no proxies, the SSRF
/// guard as its resolver ([`client`]). Two pools: one verifies TLS certificates, one (for
/// webhooks with `sslVerification: disabled`) does not.
#[derive(Clone)]
pub struct Sender {
    verifying: Outbound,
    insecure: Outbound,
    /// Timeout of one attempt: connecting, sending, and reading the answer.
    timeout: Duration,
    /// The largest body a webhook's options may shape (`delivery.max_payload_bytes`).
    max_payload_bytes: usize,
    policy: Arc<AddressPolicy>,
    keys: Arc<Keys>,
    issuer: String,
    /// Bearer tokens by (webhook id, audience), reused until shortly before they expire.
    tokens: Arc<Mutex<TokenCache>>,
    urls: Arc<Mutex<UrlCache>>,
    /// Listen sessions connected to this node: the destinations of `listen:` webhooks.
    sessions: Arc<crate::listen::Sessions>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Sender {
    fn timed_out(&self) -> String {
        format!(
            "no answer within {}",
            humantime::format_duration(self.timeout)
        )
    }

    pub fn new(
        policy: AddressPolicy,
        config: &crate::config::DeliveryConfig,
        keys: Arc<Keys>,
        issuer: String,
        sessions: Arc<crate::listen::Sessions>,
    ) -> Result<Self, rustls::Error> {
        let (timeout, concurrency) = (config.timeout, config.concurrency);
        let policy = Arc::new(policy);
        // As many idle connections per host as requests can be in flight, so webhooks sharing
        // a receiver host (or one fast webhook) never reconnect per request.
        let settings = |verify| outbound::Settings {
            policy: policy.clone(),
            connect_timeout: timeout.min(Duration::from_secs(10)),
            idle_per_host: concurrency,
            verify,
        };
        Ok(Self {
            verifying: outbound::build(&settings(true))?,
            insecure: outbound::build(&settings(false))?,
            timeout,
            max_payload_bytes: config.max_payload_bytes,
            policy,
            keys,
            issuer,
            tokens: Arc::default(),
            urls: Arc::default(),
            sessions,
        })
    }

    /// The listen sessions connected to this node.
    pub fn sessions(&self) -> &Arc<crate::listen::Sessions> {
        &self.sessions
    }

    /// The `Authorization: Bearer` value for a webhook: its token signed once and reused until
    /// shortly before it expires.
    fn bearer(
        &self,
        webhook: &Webhook,
        target: Option<&Target>,
        now_secs: i64,
    ) -> Option<HeaderValue> {
        let audience = &target?.origin;
        let mut cache = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((aud, value, exp)) = cache.get(webhook.id.as_str())
            && aud == audience
            && *exp - NOTIFICATION_TOKEN_MARGIN > now_secs
        {
            return Some(value.clone());
        }
        let claims = NotificationClaims {
            iss: self.issuer.clone(),
            aud: audience.to_string(),
            sub: webhook.workspace_id.clone(),
            webhook: webhook.id.clone(),
            iat: now_secs,
            exp: now_secs + NOTIFICATION_TOKEN_TTL,
        };
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.keys.sign(&claims))).ok()?;
        value.set_sensitive(true);
        if cache.len() > CACHE_BOUND {
            cache.retain(|_, (_, _, exp)| *exp - NOTIFICATION_TOKEN_MARGIN > now_secs);
        }
        cache.insert(
            webhook.id.clone(),
            (audience.clone(), value.clone(), claims.exp),
        );
        Some(value)
    }

    /// Builds and sends one notification, signed at `now_ms`.
    pub async fn send(&self, n: Notification<'_>, now_ms: i64) -> AttemptResult {
        let webhook = n.webhook;
        let built = payload::build(&PayloadContext {
            message_id: n.message_id,
            event: n.event,
            spec: &webhook.spec,
            status_path: n.status_path,
            company_fields: n.company_fields,
            max_bytes: self.max_payload_bytes,
        });
        let built = match built {
            Ok(built) => built,
            Err(too_large) => {
                return AttemptResult::unsent(Outcome::TooLarge, too_large.to_string());
            }
        };
        let target = target(&self.urls, &webhook.spec.url);
        let headers = self.headers(
            &n,
            target.as_deref(),
            &built.body,
            built.content_type,
            now_ms,
        );
        let request = Request {
            recorded_headers: RecordedHeaders::request(&headers),
            headers,
            body: Bytes::from(built.body),
        };
        if let Some(session) = webhook.spec.url.strip_prefix(crate::listen::SCHEME) {
            let forward = crate::listen::Forward::new(
                n.message_id,
                &n.event.kind,
                &request.headers,
                &request.body,
            );
            let recorded = (request.body, request.recorded_headers);
            return self
                .sessions
                .attempt(session, forward, recorded, self.timeout)
                .await;
        }
        self.exchange(webhook, target.as_deref(), request).await
    }

    /// The request's headers: content type, the Standard Webhooks id, timestamp and signature
    /// (also with the previous secret while it is honoured), authorization, then the webhook's
    /// own headers, which win.
    fn headers(
        &self,
        n: &Notification<'_>,
        target: Option<&Target>,
        body: &[u8],
        content_type: &'static str,
        now_ms: i64,
    ) -> HeaderMap {
        let webhook = n.webhook;
        let timestamp = now_ms / 1000;
        let mut headers = HeaderMap::with_capacity(8 + webhook.spec.headers.len());
        // Constants need no check or copy; numbers are written without a string between.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        headers.insert(&WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set("event-type", &n.event.kind);
        set("webhook-id", n.message_id);
        let mut secrets = vec![webhook.spec.secret.as_str()];
        if let Some((previous, until)) = &webhook.previous_secret
            && *until > now_ms
        {
            secrets.push(previous.as_str());
        }
        set(
            "webhook-signature",
            &signature::signature_header(secrets, n.message_id, timestamp, body),
        );
        match webhook.spec.authorization {
            AuthMode::Bearer => {
                if let Some(value) = self.bearer(webhook, target, timestamp) {
                    headers.insert(AUTHORIZATION, value);
                }
            }
            AuthMode::Basic => {
                let pair = format!("{}:{}", webhook.spec.basic_username, webhook.spec.secret);
                set(
                    "authorization",
                    &format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                );
            }
            AuthMode::None => {}
        }
        // Validation already refused the headers Tidings must own (the signature headers and
        // framing); `Authorization` may be overridden.
        for (name, value) in &webhook.spec.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(k, v);
            }
        }
        headers
    }

    /// Sends `request` to the webhook's URL and reads the answer, all within the timeout: the
    /// status decides the outcome, the body is kept up to [`MAX_RESPONSE_BODY`].
    async fn exchange(
        &self,
        webhook: &Webhook,
        target: Option<&Target>,
        request: Request,
    ) -> AttemptResult {
        let Request {
            mut headers,
            recorded_headers: request_headers,
            body: request_body,
        } = request;
        let started = Instant::now();
        let fail = |outcome: Outcome, error: String| AttemptResult {
            outcome,
            request_body: request_body.clone(),
            status: None,
            request_headers: request_headers.clone(),
            response_headers: RecordedHeaders::default(),
            response_body: String::new(),
            duration: started.elapsed(),
            error: Some(error),
            retry_after: None,
        };
        // IP literals never reach the resolver, so they are checked here.
        if let Some(ip) = target.and_then(|t| t.ip)
            && !self.policy.permits(ip)
        {
            return fail(Outcome::BlockedAddress, BlockedAddress(ip).to_string());
        }
        let client = match webhook.spec.ssl_verification {
            Toggle::Enabled => &self.verifying,
            Toggle::Disabled => &self.insecure,
        };
        let Some((route, origin)) = target.and_then(|t| Some((t.route.as_ref()?, &t.origin)))
        else {
            return fail(
                Outcome::Connect,
                "the webhook URL is not a valid HTTP URL".into(),
            );
        };
        // A `Host` the request carries wins (validation refuses one in a webhook's headers, so
        // this is the URL's).
        headers.entry(HOST).or_insert_with(|| route.host.clone());
        // One deadline for the whole attempt: connecting, sending, the answer and its body.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sent = client.send(origin, &route.connect, &route.path, &headers, &request_body);
        let (response, mut lease) = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let (outcome, message) = classify(&*e);
                return fail(outcome, message);
            }
            Err(_) => return fail(Outcome::Timeout, self.timed_out()),
        };
        let (head, mut body) = response.into_parts();
        let status = head.status;
        let retry_after = head
            .headers
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let response_headers = RecordedHeaders::response(&head.headers);
        let mut captured: Vec<u8> = Vec::new();
        let mut error = None;
        // A body known to be empty (`204`, `Content-Length: 0`) is not read: no timer for it.
        let mut ended = hyper::body::Body::is_end_stream(&body);
        if !ended {
            // The status already arrived; a body cut short does not change the outcome.
            let read = lease.read_body(&mut body, &mut captured, MAX_RESPONSE_BODY);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(read_to_end)) => ended = read_to_end,
                Ok(Err(e)) => {
                    error = Some(format!("reading the response body: {}", classify(&*e).1));
                }
                Err(_) => {
                    error = Some(format!("reading the response body: {}", self.timed_out()));
                }
            }
        }
        // Read to its end, the answer leaves its connection ready for the next request; a
        // body cut short (too large, failed, late) closes it.
        if ended {
            lease.finish();
        }
        let outcome = if status.is_success() {
            Outcome::Ok
        } else {
            Outcome::HttpStatus
        };
        AttemptResult {
            outcome,
            request_body,
            status: Some(status.as_u16()),
            request_headers,
            response_headers,
            response_body: String::from_utf8_lossy(&captured).into_owned(),
            duration: started.elapsed(),
            error: error
                .or_else(|| (!status.is_success()).then(|| format!("receiver answered {status}"))),
            retry_after,
        }
    }
}

/// A notification ready to go: its headers (and what of them the attempt records) and body.
struct Request {
    headers: HeaderMap,
    recorded_headers: RecordedHeaders,
    body: Bytes,
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP date>` as a wait from `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Maps a client error to an outcome code and a message without secrets (the client's errors
/// never name the URL).
fn classify(e: &(dyn std::error::Error + 'static)) -> (Outcome, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain: Vec<String> = Vec::new();
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<BlockedAddress>() {
            return (Outcome::BlockedAddress, b.to_string());
        }
        if let Some(d) = err.downcast_ref::<DnsFailure>() {
            return (Outcome::Dns, d.to_string());
        }
        // The budget's error travels inside an io::Error, whose `source` skips it.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or(err, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(t) = inner.downcast_ref::<AnswerTooLarge>() {
            return (Outcome::TooLarge, t.to_string());
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                return (
                    Outcome::TooLarge,
                    "the answer's head is too large (or has too many fields)".into(),
                );
            }
            if h.is_parse() || h.is_parse_status() {
                return (
                    Outcome::Protocol,
                    format!("the answer is not valid HTTP/1.1: {h}"),
                );
            }
        }
        let text = err.to_string();
        // Layers often repeat their cause's text.
        if !chain.last().is_some_and(|last| last.contains(&text)) {
            chain.push(text);
        }
        source = err.source();
    }
    let text = chain.join(": ");
    let outcome = if text.contains("certificate")
        || text.contains("tls")
        || text.contains("TLS")
        || text.contains("handshake")
    {
        Outcome::Tls
    } else if text.contains("timed out") {
        Outcome::Timeout
    } else {
        Outcome::Connect
    };
    (outcome, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
