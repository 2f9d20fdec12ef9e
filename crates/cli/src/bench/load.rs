//! The bench's load generator: `connections` loops, each owning one keep-alive HTTP/1.1
//! connection that it drives itself (the server's `delivery::outbound::Connection`: hyper's
//! client connection, no pool, no connection task), POSTing bodies built with one `format!`. The generator shares the machine
//! with the server and the receiver, so every microsecond it spends is taken from what it
//! measures; it is kept as lean as the receiver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;

use tidings_server::delivery::answer_budget::Budgeted;
use tidings_server::delivery::outbound::Connection;

/// Where the load goes: a `http://host:port/path` URL, split once.
#[derive(Clone, Debug)]
pub(super) struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    path: hyper::Uri,
    auth: Option<HeaderValue>,
}

impl Target {
    /// `url` must be `http://<ip>:<port><path>` (the bench only talks to loopback servers it
    /// started); `bearer` is sent as `Authorization: Bearer …`.
    pub(super) fn new(url: &str, bearer: Option<&str>) -> anyhow::Result<Self> {
        let uri: hyper::Uri = url.parse()?;
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
        let addr: SocketAddr = authority.as_str().parse()?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<hyper::Uri>()?;
        let auth = bearer
            .map(|b| HeaderValue::from_str(&format!("Bearer {b}")))
            .transpose()?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(authority.as_str())?,
            path,
            auth,
        })
    }

    fn request(&self, body: Bytes) -> hyper::Request<Full<Bytes>> {
        let mut req = hyper::Request::new(Full::new(body));
        *req.method_mut() = hyper::Method::POST;
        *req.uri_mut() = self.path.clone();
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(a) = &self.auth {
            headers.insert(AUTHORIZATION, a.clone());
        }
        req
    }
}

/// A new connection to `addr`.
async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Connection::handshake(MaybeHttpsStream::Http(TokioIo::new(Budgeted::new(tcp))))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// Sends `req` on `conn`, reads the whole answer, and returns its status.
async fn send(conn: &mut Connection, req: hyper::Request<Full<Bytes>>) -> anyhow::Result<u16> {
    let response = conn.request(req).await.map_err(|e| anyhow::anyhow!(e))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while !hyper::body::Body::is_end_stream(&body) {
        match conn.frame(&mut body).await {
            Some(frame) => drop(frame?),
            None => break,
        }
    }
    Ok(status)
}

/// What a load run produced.
pub(super) struct Load {
    pub accepted: u64,
    pub elapsed: Duration,
    pub started_us: u64,
    pub publish_latencies_us: Vec<u64>,
}

/// A request body: the `n`th of the run.
pub(super) type Body = Arc<dyn Fn(u64) -> Bytes + Send + Sync>;

/// `connections` loops POSTing `body(n)` to `target` for `duration` (or, with `rate`, at that
/// many requests per second in total, evenly spaced). A request that fails is not counted and
/// its connection is opened again.
pub(super) async fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
    rate: Option<u64>,
    body: Body,
) -> Load {
    let started_us = super::now_micros();
    let start = Instant::now();
    let deadline = start + duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (target, next, body) = (target.clone(), next.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut lat = Vec::new();
            let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r as f64));
            // At a rate, the loops take turns: loop `c` starts `c / connections` of an interval
            // late, so requests arrive evenly spaced, not all loops at once every interval.
            let mut tick = start
                + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
            let mut conn: Option<Connection> = None;
            while Instant::now() < deadline {
                if let Some(i) = interval {
                    tick += i;
                    tokio::time::sleep_until(tick.into()).await;
                }
                if conn.as_ref().is_none_or(Connection::ended) {
                    conn = open(target.addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    // Nothing listens (yet): try again shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let n = next.fetch_add(1, Ordering::Relaxed);
                let req = target.request(body(n));
                let t = Instant::now();
                match send(c, req).await {
                    Ok(status) if (200..300).contains(&status) => {
                        ok += 1;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    Ok(_) => {}
                    Err(_) => conn = None,
                }
            }
            (ok, lat)
        }));
    }
    let mut accepted = 0;
    let mut publish_latencies_us = Vec::new();
    for t in tasks {
        if let Ok((ok, lat)) = t.await {
            accepted += ok;
            publish_latencies_us.extend(lat);
        }
    }
    Load {
        accepted,
        elapsed: start.elapsed(),
        started_us,
        publish_latencies_us,
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_is_split_once() {
        let t = Target::new("http://127.0.0.1:8080/v1/events", Some("k")).unwrap();
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.path, "/v1/events");
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.auth.as_ref().unwrap(), "Bearer k");
        let req = t.request(bytes::Bytes::from_static(b"{}"));
        assert_eq!(req.uri(), "/v1/events");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert!(
            Target::new("http://localhost/x", None).is_err(),
            "no port, no IP"
        );
    }
}
