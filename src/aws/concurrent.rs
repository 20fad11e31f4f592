//! Independent reads of one kind run together: a no-op plan of a stack with hundreds of
//! queues must cost rounds of calls, not one round per queue. A bounded window keeps a bulk
//! read within AWS's per-account request rates. Independent calls inside one resource (a
//! table's routes, a function's settings) run together too, each to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// How many calls one bulk read keeps in flight.
pub const READ_WINDOW: usize = 16;

/// Run `futures` with at most `window` in flight (the rest start as earlier ones finish), and
/// return their outputs in input order; the first error ends the whole.
pub async fn try_join_windowed<T, E, F>(
    futures: impl IntoIterator<Item = F>,
    window: usize,
) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    let window = window.max(1);
    std::future::poll_fn(|cx| {
        let mut in_flight = 0;
        for (slot, result) in pending.iter_mut().zip(out.iter_mut()) {
            let Some(future) = slot else { continue };
            if in_flight == window {
                break; // not started yet: an async fn does nothing until first polled
            }
            match future.as_mut().poll(cx) {
                Poll::Ready(Ok(value)) => {
                    *result = Some(value);
                    *slot = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => in_flight += 1,
            }
        }
        if in_flight == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    Ok(out.into_iter().flatten().collect())
}

/// Run `futures` together, at most `window` in flight, and wait for every one of them even
/// when one fails (nothing is cancelled half-way): the outputs in input order, or the first
/// error in input order. For the independent calls inside one resource, whose failure must not
/// leave another call's outcome unknown.
pub async fn join_windowed<T, E, F>(
    futures: impl IntoIterator<Item = F>,
    window: usize,
) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let settled = try_join_windowed(
        futures
            .into_iter()
            .map(|f| async move { Ok::<_, std::convert::Infallible>(f.await) }),
        window,
    )
    .await
    .unwrap_or_else(|never| match never {});
    settled.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn keeps_order_bounds_the_window_and_runs_calls_together() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let jobs = (0..40).map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(i)
            }
        });
        let got = try_join_windowed(jobs, 8).await.unwrap();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 8);
        // 5 rounds of 20 ms, not 40.
        assert!(started.elapsed() < Duration::from_millis(400));
    }

    #[tokio::test]
    async fn join_windowed_finishes_every_call_and_returns_the_first_error() {
        let finished = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let jobs = (0..6).map(|i| {
            let finished = finished.clone();
            async move {
                // The failing calls end first; the others must still run to their end.
                if i == 1 || i == 4 {
                    return Err(i);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            }
        });
        assert_eq!(join_windowed(jobs, 16).await, Err(1));
        assert_eq!(finished.load(Ordering::SeqCst), 4);
        assert!(started.elapsed() < Duration::from_millis(100));
        let ok = (0..3).map(|i| async move { Ok::<_, ()>(i) });
        assert_eq!(join_windowed(ok, 2).await, Ok(vec![0, 1, 2]));
    }

    #[tokio::test]
    async fn the_first_error_is_returned() {
        let jobs = (0..5).map(|i| async move { if i == 3 { Err(i) } else { Ok(i) } });
        assert_eq!(try_join_windowed(jobs, 2).await, Err(3));
    }
}
