//! `tidings receive`: a small webhook receiver for trying Tidings out and for debugging. It
//! prints every notification it gets and, given the webhook's secret, whether the Standard
//! Webhooks signature verifies. Answers 204 (or the status given with `--status`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tidings_core::signature;

/// What the receiver was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The webhook's secret; without it signatures are shown but not checked.
    pub secret: Option<String>,
    /// Status to answer with.
    pub status: u16,
}

/// Checks a `webhook-signature` header against the secret: `valid`, `INVALID` or why not.
pub fn check_signature(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> &'static str {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return "INVALID (no webhook-timestamp)";
    };
    let expected = signature::sign(secret, id, ts, body);
    if signatures.split(' ').any(|s| s == expected) {
        "valid"
    } else {
        "INVALID"
    }
}

async fn handle(opts: Arc<Options>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut out = format!("--> {} {}\n", parts.method, parts.uri);
    for (k, v) in &parts.headers {
        out.push_str(&format!(
            "    {}: {}\n",
            k,
            v.to_str().unwrap_or("<binary>")
        ));
    }
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    out.push_str(&format!("{pretty}\n"));
    if let Some(secret) = &opts.secret {
        let verdict = check_signature(
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
        );
        out.push_str(&format!("signature: {verdict}\n"));
    }
    println!("{out}");
    Response::builder()
        .status(opts.status)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Serves until Ctrl-C.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    println!(
        "receiving webhooks on http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let opts = Arc::new(opts);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let opts = opts.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let opts = opts.clone();
                        async move { Ok::<_, Infallible>(handle(opts, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_standard_webhooks_vector() {
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            check_signature(secret, id, "1614265330", good, body),
            "valid"
        );
        assert_eq!(
            check_signature(secret, id, "1614265331", good, body),
            "INVALID"
        );
        assert_eq!(
            check_signature(secret, id, "1614265330", &format!("v1,xx {good}"), body),
            "valid"
        );
    }
}
