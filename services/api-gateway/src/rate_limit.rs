//! One token bucket for the whole gateway.
//!
//! The bucket holds at most `burst` tokens and gains `rate` tokens per second; each
//! request takes one. With the bucket empty the answer is 429 problem+json with a
//! `Retry-After` header saying when the next token arrives (at least 1 second, as the
//! header has whole seconds). Time comes from `tokio::time::Instant`, so tests pause the
//! clock instead of sleeping. One bucket per process: with several gateway replicas the
//! effective limit is the sum, which is fine for protecting the services behind it.

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use service_runtime::problem::Problem;
use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::time::Instant;

/// Tokens are counted in billionths, so that refilling per nanosecond is exact integer
/// arithmetic (no float drift that would refuse a request a refill should have allowed).
const UNITS_PER_TOKEN: u128 = 1_000_000_000;

/// A token bucket, safe to share between requests.
#[derive(Debug)]
pub struct TokenBucket {
    /// Units gained per nanosecond (equal to tokens per second).
    rate: u128,
    capacity: u128,
    state: Mutex<Level>,
}

#[derive(Debug)]
struct Level {
    units: u128,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate_per_second`.
    pub fn new(rate_per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let capacity = u128::from(burst.get()) * UNITS_PER_TOKEN;
        Self {
            rate: u128::from(rate_per_second.get()),
            capacity,
            state: Mutex::new(Level {
                units: capacity,
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token, or says how long until the next one arrives.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update; the level
        // is still a number, so keep going.
        let mut level = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(level.at).as_nanos();
        level.units = (level.units + elapsed.saturating_mul(self.rate)).min(self.capacity);
        level.at = now;
        if level.units >= UNITS_PER_TOKEN {
            level.units -= UNITS_PER_TOKEN;
            Ok(())
        } else {
            let missing = UNITS_PER_TOKEN - level.units;
            Err(Duration::from_nanos(missing.div_ceil(self.rate) as u64))
        }
    }
}

/// `Retry-After` carries whole seconds: round up, and never say 0 (retry at once).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

/// Middleware: lets a request through if the bucket has a token, else answers 429.
pub async fn enforce(
    State(bucket): State<Arc<TokenBucket>>,
    request: Request,
    next: Next,
) -> Response {
    match bucket.try_acquire() {
        Ok(()) => next.run(request).await,
        Err(wait) => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "the gateway's request rate limit is reached",
        )
        .retry_after(retry_after_seconds(wait))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket::new(
            NonZeroU32::new(rate).unwrap(),
            NonZeroU32::new(burst).unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_burst_passes_then_requests_wait_for_the_refill() {
        let bucket = bucket(4, 3);
        for _ in 0..3 {
            assert_eq!(bucket.try_acquire(), Ok(()));
        }
        // 4 tokens per second: the next one is 250 ms away.
        assert_eq!(bucket.try_acquire(), Err(Duration::from_millis(250)));
        tokio::time::advance(Duration::from_millis(249)).await;
        assert_eq!(bucket.try_acquire(), Err(Duration::from_millis(1)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            bucket.try_acquire(),
            Ok(()),
            "exactly one refill period is enough"
        );
        assert!(bucket.try_acquire().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_only_up_to_the_burst() {
        let bucket = bucket(100, 5);
        for _ in 0..5 {
            bucket.try_acquire().unwrap();
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        let passed = (0..50).filter(|_| bucket.try_acquire().is_ok()).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(5)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
    }
}
