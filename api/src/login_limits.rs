//! Limits on failed sign-ins (docs/decisions.md, 47): after 5 failures for one e-mail address
//! (lower-cased), or 20 from one client address, within 15 minutes, sign-in is refused with
//! 429 before any password is checked, until the oldest of those failures is 15 minutes old.
//!
//! Only failures count, and the window slides over their times: `governor`'s GCRA, used for
//! the visitor limits, counts every request and cannot be asked whether a key is limited
//! without spending a request, which would count successful sign-ins too. Kept in memory per
//! instance: behind N instances an attacker gets up to N times the attempts, which at 5 per
//! 15 minutes and an Argon2 hash each is still far from guessing a password.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::error::ApiError;

/// How far back failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures for one address (e-mail) within the window.
pub const PER_EMAIL: usize = 5;
/// Failures from one client address within the window: several people may share it.
pub const PER_CLIENT: usize = 20;
/// Keys tracked before the ones with no recent failure are dropped.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Client(IpAddr),
}

/// The recent failed sign-ins of this instance.
#[derive(Default)]
pub struct LoginLimits {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

fn keys(email: &str, client: IpAddr) -> [(Key, usize); 2] {
    [
        (Key::Email(email.trim().to_lowercase()), PER_EMAIL),
        (Key::Client(client), PER_CLIENT),
    ]
}

impl LoginLimits {
    /// A 429 with `Retry-After` when the address or the client is over its limit.
    pub fn check(&self, email: &str, client: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut failures = self.lock();
        let wait = keys(email, client)
            .into_iter()
            .filter_map(|(key, limit)| {
                let times = failures.get_mut(&key)?;
                forget_old(times, now);
                (times.len() >= limit).then(|| WINDOW.saturating_sub(now - times[0]))
            })
            .max();
        match wait {
            None => Ok(()),
            Some(wait) => {
                let seconds = u32::try_from(wait.as_secs() + 1).unwrap_or(u32::MAX);
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many failed sign-ins; retry in {seconds} s"),
                )
                .retry_after(seconds))
            }
        }
    }

    /// Counts a failed sign-in against the address and the client.
    pub fn record_failure(&self, email: &str, client: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
        }
        for (key, _) in keys(email, client) {
            let times = failures.entry(key).or_default();
            forget_old(times, now);
            times.push_back(now);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures
            .lock()
            .expect("the login limits lock is never poisoned")
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now - *t >= WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_for_one_address_limit_it_and_no_other() {
        let limits = LoginLimits::default();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_EMAIL {
            assert!(limits.check("Ann@example.com", client).is_ok());
            limits.record_failure("Ann@example.com", client);
        }
        let refused = limits.check("ann@EXAMPLE.com", client).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limits.check("bob@example.com", client).is_ok());
    }

    #[test]
    fn twenty_failures_from_one_client_limit_it() {
        let limits = LoginLimits::default();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for n in 0..PER_CLIENT {
            limits.record_failure(&format!("user{n}@example.com"), client);
        }
        assert!(limits.check("new@example.com", client).is_err());
        assert!(
            limits
                .check("new@example.com", "192.0.2.2".parse().unwrap())
                .is_ok()
        );
    }
}
