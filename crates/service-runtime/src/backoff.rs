//! Waiting between retries: doubling delays, cut short by shutdown.
//!
//! Every retry loop in the services (setup steps, a failing message, the dead-letter
//! queue) waits the same way, so it is written once here.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Delays that start at `first` and double after each wait, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    delay: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `first`; never waits longer than `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { delay: first, max }
    }

    /// How long the next [`Self::sleep`] waits (for the log line announcing the retry).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Waits [`Self::delay`], then doubles it up to the maximum. Returns false, without
    /// waiting any longer, as soon as `shutdown` is cancelled: the caller gives up.
    pub async fn sleep(&mut self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(self.delay) => {}
        }
        self.delay = self.delay.saturating_mul(2).min(self.max);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn delays_double_up_to_the_maximum() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
        let mut waited = Vec::new();
        for _ in 0..5 {
            let announced = backoff.delay();
            let started = Instant::now();
            assert!(backoff.sleep(&shutdown).await);
            assert_eq!(started.elapsed(), announced, "sleeps what it announced");
            waited.push(announced.as_millis());
        }
        assert_eq!(waited, [200, 400, 800, 1000, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_cuts_the_wait_short() {
        let shutdown = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(5));
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        let started = Instant::now();
        assert!(!backoff.sleep(&shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // Already cancelled: no wait at all.
        assert!(!backoff.sleep(&shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
