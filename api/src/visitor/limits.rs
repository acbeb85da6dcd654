//! Rate limits on the visitor endpoints: per visitor and per client address, so that one
//! page left open in a loop, or one script, cannot flood a tenant's inbox. Kept in memory
//! per instance (a visitor usually stays on one): the bound holds per instance.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Requests per second a visitor may make, sustained, and in a burst.
const PER_VISITOR: (u32, u32) = (5, 30);
/// Requests per second one address may make (many visitors may share it behind a NAT).
const PER_ADDRESS: (u32, u32) = (50, 200);
/// How many checks between two sweeps of keys that have fully recovered.
const SWEEP_EVERY: u64 = 10_000;

fn limiter<K: std::hash::Hash + Eq + Clone>(
    (per_second, burst): (u32, u32),
) -> DefaultKeyedRateLimiter<K> {
    let quota = Quota::per_second(NonZeroU32::new(per_second).expect("a positive rate"))
        .allow_burst(NonZeroU32::new(burst).expect("a positive burst"));
    RateLimiter::keyed(quota)
}

/// The visitor endpoints' limits.
pub struct VisitorLimits {
    per_visitor: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl Default for VisitorLimits {
    fn default() -> Self {
        Self {
            per_visitor: limiter(PER_VISITOR),
            per_address: limiter(PER_ADDRESS),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }
}

fn too_many(wait: Duration) -> ApiError {
    let seconds = u32::try_from(wait.as_secs() + 1).unwrap_or(u32::MAX);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {seconds} s"),
    )
    .retry_after(seconds)
}

impl VisitorLimits {
    /// Counts one request from `address`; a 429 with `Retry-After` over its limit.
    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        self.sweep();
        self.per_address
            .check_key(&address)
            .map_err(|late| too_many(late.wait_time_from(self.clock.now())))
    }

    /// Counts one request of `visitor`; a 429 with `Retry-After` over its limit.
    pub fn check_visitor(&self, visitor: &str) -> Result<(), ApiError> {
        self.per_visitor
            .check_key(&visitor.to_owned())
            .map_err(|late| too_many(late.wait_time_from(self.clock.now())))
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_visitor.retain_recent();
            self.per_address.retain_recent();
        }
    }
}
