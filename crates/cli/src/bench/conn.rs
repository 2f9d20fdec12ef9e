//! One keep-alive HTTP/1.1 connection of the load generator: hyper's client connection, driven
//! by the task that holds it (no connection task, no pool). The server's notifications used
//! it until the twenty-first round (ADR 0014); the bench kept it so that its harness stayed the
//! same from round to round.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;

/// A request body, in memory.
type Body = Full<Bytes>;
/// What a connection runs over (plain TCP here; the type the server's connector gave).
type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// One hyper HTTP/1.1 connection: the handle requests go through and the future that does its
/// I/O, polled by the load loop that holds it.
pub(super) struct Connection {
    sender: http1::SendRequest<Body>,
    driver: Pin<Box<http1::Connection<Io, Body>>>,
    /// The driver finished (closed by either side, or failed): never polled again.
    ended: bool,
}

impl Connection {
    /// An HTTP/1.1 connection over `io`.
    pub(super) async fn handshake(io: Io) -> Result<Self, hyper::Error> {
        let (sender, driver) = http1::handshake(io).await?;
        Ok(Self {
            sender,
            driver: Box::pin(driver),
            ended: false,
        })
    }

    /// Whether the connection has ended (closed by either side, or failed).
    pub(super) fn ended(&self) -> bool {
        self.ended
    }

    /// Sends `req` and returns the answer's head and body, driving the connection meanwhile.
    pub(super) async fn request(
        &mut self,
        req: Request<Body>,
    ) -> anyhow::Result<Response<Incoming>> {
        let Self {
            sender,
            driver,
            ended,
        } = self;
        let mut answer = std::pin::pin!(sender.send_request(req));
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the answer, which the
            // request's future then finds in the same poll.
            let ended = drive(driver, ended, cx);
            match answer.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(anyhow::Error::from)),
                Poll::Pending if ended => Poll::Ready(Err(anyhow::anyhow!(
                    "the connection closed before the answer"
                ))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The next frame of the answer's `body` (`None` at its end), the connection driven
    /// meanwhile.
    pub(super) async fn frame(
        &mut self,
        body: &mut Incoming,
    ) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        let mut next = std::pin::pin!(body.frame());
        poll_fn(|cx| {
            let ended = self.drive(cx);
            match next.as_mut().poll(cx) {
                Poll::Pending if ended => Poll::Ready(None),
                other => other,
            }
        })
        .await
    }

    /// Polls the connection's I/O; returns whether it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        drive(&mut self.driver, &mut self.ended, cx)
    }
}

/// Polls a connection's future until it finishes, then never again; returns whether it has
/// ended.
fn drive(
    driver: &mut Pin<Box<http1::Connection<Io, Body>>>,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> bool {
    if !*ended && driver.as_mut().poll(cx).is_ready() {
        *ended = true;
    }
    *ended
}
