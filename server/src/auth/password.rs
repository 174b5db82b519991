//! argon2id password hashing, bounded.
//!
//! A hash takes tens of milliseconds of CPU and about 19 MiB of memory, so it runs on a
//! blocking thread, and at most `concurrency` of them run at once (by default one per core).
//! A request waits up to `max_wait` for a slot, then gets a fast 503 with `Retry-After`: a
//! login flood costs bounded memory and threads, and the rest of the API keeps answering.

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};
use tokio::sync::Semaphore;

use crate::{config::Settings, error::AppError};

/// Verified against when the user does not exist, so that an unknown user costs the same
/// time as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking("timing-equaliser-not-a-password").ok());

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Hashes and verifies passwords with a bound on the work in flight.
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    max_wait: Duration,
    running: Arc<RunningGauge>,
}

#[derive(Default)]
struct RunningGauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts a hash as running for as long as it lives (on the blocking thread).
struct Running<'a>(&'a RunningGauge);

impl<'a> Running<'a> {
    fn start(gauge: &'a RunningGauge) -> Self {
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(now, Ordering::SeqCst);
        Self(gauge)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a client is told to wait when every slot stayed busy.
const RETRY_AFTER_SECS: u64 = 1;

impl Passwords {
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            max_wait,
            running: Arc::default(),
        }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(
            settings.password_hash_concurrency,
            settings.password_hash_max_wait,
        )
    }

    /// The most hashes that ever ran at the same time (for tests and diagnostics).
    pub fn peak_concurrency(&self) -> usize {
        self.running.peak.load(Ordering::SeqCst)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS,
            })?
            .map_err(AppError::internal)?;
        let running = self.running.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(&running);
            work()
        })
        .await
        .map_err(AppError::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hash_blocking(&password))
            .await?
            .map_err(AppError::internal)
    }

    /// `stored_hash` is `None` for an unknown user: the work is done anyway and `false`
    /// returned.
    pub async fn verify(
        &self,
        password: String,
        stored_hash: Option<String>,
    ) -> Result<bool, AppError> {
        self.run(move || match stored_hash {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                if let Some(dummy) = DUMMY_HASH.as_deref() {
                    verify_blocking(&password, dummy);
                }
                false
            }
        })
        .await
    }
}

/// Computes the dummy hash ahead of the first login, so that login does not pay for it.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_never_contain_the_password() {
        let passwords = Passwords::new(2, Duration::from_secs(5));
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        let verify = |pw: &str, hash| passwords.verify(pw.into(), hash);
        assert!(verify("correct horse", Some(hash.clone())).await.unwrap());
        assert!(!verify("wrong horse", Some(hash)).await.unwrap());
        assert!(!verify("anything", None).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_flood_runs_at_most_the_bound_and_sheds_the_excess() {
        let passwords = Passwords::new(2, Duration::from_millis(50));
        let attempts: Vec<_> = (0..40)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.verify("pw".into(), None).await })
            })
            .collect();
        let mut shed = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(verified) => assert!(!verified),
                Err(AppError::Overloaded { retry_after_secs }) => {
                    assert!(retry_after_secs >= 1);
                    shed += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(passwords.peak_concurrency() <= 2);
        assert!(passwords.peak_concurrency() >= 1);
        assert!(shed > 0, "40 hashes cannot all fit in 50 ms on 2 slots");
    }
}
