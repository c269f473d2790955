//! Request bodies: they must keep arriving, and an early answer waits until they have.
//!
//! * A body that stalls, or trickles in slower than [`MIN_RATE`] once the grace has passed,
//!   ends with 408 `body_timeout`: a slow client must not hold a connection and a buffer
//!   forever. The grace is the `body_timeout` setting (30 s by default), which is also the
//!   longest silence allowed.
//! * An answer given before the body was read (a 401 from the token check, a 403 from the role
//!   check) is sent only after the rest of the body has been read and thrown away, up to
//!   [`DRAIN_LIMIT`]. Over HTTP/2 an early answer is otherwise followed by `RST_STREAM`, and
//!   common clients (curl, and phone HTTP stacks that behave like it) report a broken stream
//!   instead of the status: a phone would never see the 401 that tells it to refresh.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_core::Stream;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

use crate::state::AppState;

/// The slowest a body may arrive on average once the grace has passed, bytes per second. Slow
/// 2G carries about six times this.
pub const MIN_RATE: u64 = 1024;
/// The most of an unread body thrown away before an early answer is sent: the largest body
/// any endpoint takes. Past it the answer goes out and the stream is reset.
pub const DRAIN_LIMIT: usize = 16 << 20;

struct Guard {
    payload: Payload,
    received: u64,
    done: bool,
    started: Instant,
    grace: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl Guard {
    fn new(payload: Payload, grace: Duration) -> Self {
        let started = Instant::now();
        Guard {
            payload,
            received: 0,
            done: false,
            started,
            grace,
            deadline: Box::pin(tokio::time::sleep_until(started + grace)),
        }
    }

    /// When the body must next show progress: after at most `grace` of silence, and no later
    /// than the average rate allows.
    fn next_deadline(&self) -> Instant {
        let by_rate = self.started + self.grace + Duration::from_secs(self.received / MIN_RATE);
        by_rate.min(Instant::now() + self.grace)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, PayloadError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.payload).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.received += bytes.len() as u64;
                let next = self.next_deadline();
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(other) => {
                self.done = true;
                Poll::Ready(other)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body stopped arriving",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The body as the handler reads it: the same stream the middleware drains afterwards.
struct Guarded(Rc<RefCell<Guard>>);

impl Stream for Guarded {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll(cx)
    }
}

/// Whether a payload error is the body timing out.
pub fn timed_out(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The middleware: guards every body, and drains what the handler left before answering.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let grace = req
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(30), |s| s.body_timeout);
    let guard = Rc::new(RefCell::new(Guard::new(req.take_payload(), grace)));
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(Guarded(guard.clone()));
    req.set_payload(Payload::from(stream));
    let response = next.call(req).await?;
    let mut drained = 0usize;
    std::future::poll_fn(|cx| {
        loop {
            match guard.borrow_mut().poll(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    drained += bytes.len();
                    if drained > DRAIN_LIMIT {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    Ok(response)
}
