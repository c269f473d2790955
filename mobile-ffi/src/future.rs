//! A blocking call run on a thread of its own, as a future: what lets `sync_async` be awaited
//! from a Kotlin coroutine or a Swift task without an async runtime in the library.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// The result of a call running on its own thread.
pub struct OnThread<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// Runs `f` on a new thread; the returned future is ready when `f` returns.
pub fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> OnThread<T> {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let theirs = slot.clone();
    std::thread::spawn(move || {
        let value = f();
        let mut slot = theirs.lock().unwrap_or_else(|e| e.into_inner());
        slot.value = Some(value);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    });
    OnThread { slot }
}

impl<T> Future for OnThread<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    #[test]
    fn the_future_is_pending_until_the_thread_returns_and_then_ready_with_its_value() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let mut future = on_thread(move || {
            // The call returns only once the test has seen the future pending.
            wait.recv().map(|()| 42)
        });
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        go.send(()).expect("the thread waits");
        let value = loop {
            match Pin::new(&mut future).poll(&mut cx) {
                Poll::Ready(v) => break v,
                Poll::Pending => std::thread::park(),
            }
        };
        assert_eq!(value, Ok(42));
    }
}
