//! A bound on how much a receiver can make Tidings read for one answer: the head, any number
//! of interim `1xx` answers, the body read and trailers together. A receiver is integrator
//! code; without the bound one that answers endless `1xx` heads or an endless trailer section
//! keeps a delivery thread parsing for the whole timeout. The notification connection's TCP
//! stream counts what it reads against a budget that each request sets again
//! ([`Budget::reset`]); past it, reads fail with [`AnswerTooLarge`] and the attempt ends as
//! `too_large`. The time is bounded by the attempt's deadline (`delivery.timeout`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::ssrf::GuardedResolver;

/// Bytes one answer may take on the wire: a head of hyper's largest (~400 KiB), what the sender
/// reads of a body (64 KiB), and room for TLS records and interim answers.
pub const ANSWER_BYTES: usize = 1024 * 1024;

/// A receiver sent more than [`ANSWER_BYTES`] for one answer.
#[derive(Debug, thiserror::Error)]
#[error("the answer went past {0} bytes (head, interim 1xx answers, trailers and body read)")]
pub struct AnswerTooLarge(pub usize);

/// What is left of a connection's budget; shared by its stream and its holder.
#[derive(Debug, Clone)]
pub struct Budget(Arc<AtomicUsize>);

impl Budget {
    /// Allows `bytes` more to be read (before each request).
    pub fn reset(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads draw on a [`Budget`].
#[derive(Debug)]
pub struct Budgeted {
    tcp: TcpStream,
    left: Budget,
}

impl Budgeted {
    /// `tcp` with a budget of [`ANSWER_BYTES`].
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            left: Budget(Arc::new(AtomicUsize::new(ANSWER_BYTES))),
        }
    }

    pub fn budget(&self) -> Budget {
        self.left.clone()
    }
}

impl AsyncRead for Budgeted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.tcp).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        let left = self.left.0.load(Ordering::Relaxed);
        if read > left {
            self.left.0.store(0, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(AnswerTooLarge(ANSWER_BYTES))));
        }
        self.left.0.store(left - read, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Budgeted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Connection for Budgeted {
    fn connected(&self) -> Connected {
        self.tcp.connected()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper-util's TCP connector (the SSRF-guarded resolver under it), its streams budgeted.
#[derive(Debug, Clone)]
pub struct BudgetingConnector(pub HttpConnector<GuardedResolver>);

impl tower::Service<Uri> for BudgetingConnector {
    type Response = TokioIo<Budgeted>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?;
            Ok(TokioIo::new(Budgeted::new(tcp.into_inner())))
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn reads_past_the_budget_fail_until_it_is_reset() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.write_all(&[b'x'; 300]).await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        });
        let mut stream = Budgeted::new(TcpStream::connect(addr).await.unwrap());
        let budget = stream.budget();
        budget.reset(100);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let err = loop {
            match stream.read(&mut buf).await {
                Ok(0) => panic!("ended before the budget"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert!(got.len() <= 100, "{}", got.len());
        assert!(
            err.get_ref().is_some_and(|e| e.is::<AnswerTooLarge>()),
            "{err}"
        );
        budget.reset(1000);
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "reset: reads go on");
    }
}
