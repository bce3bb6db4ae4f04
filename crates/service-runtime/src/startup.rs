//! Starting before the dependencies are up.
//!
//! A service whose Postgres or Kafka is not reachable yet does not crash: it serves
//! `/readyz` (503) and keeps trying the setup step with backoff until it succeeds.

use crate::backoff::Backoff;
use std::{future::Future, time::Duration};
use tokio_util::sync::CancellationToken;

/// First wait between two attempts; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds (true) or `shutdown` is cancelled (false), logging
/// each failure with `step` so the log says what the service is waiting for.
pub async fn retry_until_ready<F, Fut, E>(
    step: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        match attempt().await {
            Ok(()) => {
                tracing::info!(step, "ready");
                return true;
            }
            Err(error) => {
                tracing::warn!(step, error = %error, retry_in_ms = backoff.delay().as_millis() as u64, "not ready yet");
            }
        }
        if !backoff.sleep(shutdown).await {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_with_growing_backoff_until_success() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let ready = retry_until_ready("test", &CancellationToken::new(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err("down")
            } else {
                Ok(())
            }
        })
        .await;
        assert!(ready);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 250 + 500 + 1000 ms of backoff before the fourth attempt.
        assert_eq!(started.elapsed(), Duration::from_millis(1750));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_retries() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert!(!retry_until_ready("test", &shutdown, || async { Err::<(), _>("down") }).await);
    }
}
