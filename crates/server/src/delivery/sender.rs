//! Sends one notification attempt and classifies what happened. Builds the request exactly as
//! SPEC §5 describes: envelope, `Content-Type`, `User-Agent`, `Event-Type`, Standard Webhooks
//! headers, then the webhook's own headers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tidings_core::envelope;
use tidings_core::event::Event;
use tidings_core::signature;
use tidings_core::webhook::Webhook;

use super::guard::{AddressPolicy, BlockedAddress, DnsFailure, GuardedResolver};

/// Response bodies are kept up to this size.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// `User-Agent` of every notification.
pub const USER_AGENT: &str = concat!("Tidings/", env!("CARGO_PKG_VERSION"));

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub request_headers: BTreeMap<String, String>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: String,
    pub duration: Duration,
    pub error: Option<String>,
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
        }
    }
}

/// The outbound HTTP client: pooled keep-alive connections, no redirects, no proxies, the SSRF
/// guard as its resolver.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl Sender {
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .http1_only()
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Builds and sends the notification of `event` to `webhook` as message `message_id`,
    /// signed at `timestamp` (Unix seconds).
    pub async fn send(
        &self,
        webhook: &Webhook,
        event: &Event,
        message_id: &str,
        timestamp: i64,
    ) -> AttemptResult {
        let body = envelope::flat(message_id, event);
        let headers = build_headers(webhook, event, message_id, timestamp, &body);
        let request_headers = redacted(&headers);
        let started = Instant::now();
        let fail = |outcome: Outcome, error: String| AttemptResult {
            outcome,
            status: None,
            request_headers: request_headers.clone(),
            response_headers: BTreeMap::new(),
            response_body: String::new(),
            duration: started.elapsed(),
            error: Some(error),
        };
        // IP literals never reach the resolver, so they are checked here.
        if let Some(ip) = literal_ip(&webhook.spec.url)
            && !self.policy.permits(ip)
        {
            return fail(Outcome::BlockedAddress, BlockedAddress(ip).to_string());
        }
        let result = self
            .client
            .post(&webhook.spec.url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                let (outcome, message) = classify(&e);
                return fail(outcome, message);
            }
        };
        let status = response.status();
        let response_headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut captured: Vec<u8> = Vec::new();
        let mut error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BODY - captured.len();
                    captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if captured.len() >= MAX_RESPONSE_BODY {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The status already arrived; a body cut short does not change the outcome.
                    error = Some(format!("reading the response body: {}", classify(&e).1));
                    break;
                }
            }
        }
        let outcome = if status.is_success() {
            Outcome::Ok
        } else {
            Outcome::HttpStatus
        };
        AttemptResult {
            outcome,
            status: Some(status.as_u16()),
            request_headers,
            response_headers,
            response_body: String::from_utf8_lossy(&captured).into_owned(),
            duration: started.elapsed(),
            error: error
                .or_else(|| (!status.is_success()).then(|| format!("receiver answered {status}"))),
        }
    }
}

fn literal_ip(url: &str) -> Option<IpAddr> {
    match url::Url::parse(url).ok()?.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn build_headers(
    webhook: &Webhook,
    event: &Event,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("content-type", "application/json; charset=utf-8");
    set("event-type", &event.kind);
    set("webhook-id", message_id);
    set("webhook-timestamp", &timestamp.to_string());
    set(
        "webhook-signature",
        &signature::signature_header([webhook.spec.secret.as_str()], message_id, timestamp, body),
    );
    // The webhook's own headers come last and win (validation already refused the ones Tidings
    // must own: the signature headers and framing).
    for (name, value) in &webhook.spec.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }
    h
}

/// Header names whose values are credentials: recorded as `***`.
fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || ["token", "secret", "password", "api-key", "apikey", "auth"]
            .iter()
            .any(|s| n.contains(s))
}

fn redacted(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if is_sensitive(k.as_str()) {
                "***".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
}

/// Maps a client error to an outcome code and a message without secrets.
fn classify(e: &reqwest::Error) -> (Outcome, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<BlockedAddress>() {
            return (Outcome::BlockedAddress, b.to_string());
        }
        if let Some(d) = err.downcast_ref::<DnsFailure>() {
            return (Outcome::Dns, d.to_string());
        }
        chain.push(err.to_string());
        source = err.source();
    }
    let text = chain.join(": ");
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else if text.contains("certificate")
        || text.contains("tls")
        || text.contains("TLS")
        || text.contains("handshake")
    {
        Outcome::Tls
    } else {
        Outcome::Connect
    };
    // reqwest's messages name the URL; strip query strings that might carry tokens.
    let text = e.url().map_or(text.clone(), |u| {
        let mut clean = u.clone();
        clean.set_query(None);
        text.replace(u.as_str(), clean.as_str())
    });
    (outcome, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_in_recorded_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        h.insert("x-api-key", HeaderValue::from_static("k"));
        h.insert("x-request-id", HeaderValue::from_static("r1"));
        let r = redacted(&h);
        assert_eq!(r["authorization"], "***");
        assert_eq!(r["x-api-key"], "***");
        assert_eq!(r["x-request-id"], "r1");
    }
}
