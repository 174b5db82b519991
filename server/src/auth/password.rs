//! argon2id password hashing, bounded.
//!
//! A hash takes tens of milliseconds of CPU and about 19 MiB of memory, so it runs on a
//! blocking thread, and at most `concurrency` of them run at once (by default one per core).
//! A request waits up to `max_wait` for a slot, then gets a fast 503 with `Retry-After`: a
//! login flood costs bounded CPU and threads, and the rest of the API keeps answering.
//!
//! While hashes queue, each slot's argon2 work area is reused by the next hash: a fresh 19 MiB
//! buffer per hash made the allocator keep hundreds of MiB during a login flood (glibc raises
//! its mmap threshold after the first free, then fragments). Memory is thus bounded by
//! construction: `concurrency` work areas. The last hash of a burst frees them all, so an idle
//! server holds none.

use std::{
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{
        self,
        phc::{Output, ParamsString, Salt},
    },
};
use tokio::sync::Semaphore;

use crate::{config::Settings, error::AppError};

/// The memory one argon2 computation works in.
type WorkArea = Vec<Block>;

/// Runs argon2 in `area`, sized to the parameters.
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    area: &mut WorkArea,
) -> argon2::Result<()> {
    area.resize(params.block_count(), Block::new());
    argon.hash_password_into_with_memory(password, salt, out, &mut area[..])
}

/// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a random salt.
fn hash_in(password: &str, area: &mut WorkArea) -> Result<String, password_hash::Error> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = password_hash::generate_salt();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, &params, password.as_bytes(), &salt, &mut out, area)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(Salt::new(&salt)?),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Checks `password` against a PHC string, with that string's own parameters.
fn verify_in(password: &str, hash: &str, area: &mut WorkArea) -> bool {
    try_verify(password, hash, area).unwrap_or(false)
}

fn try_verify(
    password: &str,
    hash: &str,
    area: &mut WorkArea,
) -> Result<bool, password_hash::Error> {
    let hash = PasswordHash::new(hash)?;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(hash.algorithm.as_str())?;
    let version = hash.version.map(Version::try_from).transpose()?;
    let params = Params::try_from(&hash)?;
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params.clone());
    let mut out = vec![0u8; expected.len()];
    compute(
        &argon,
        &params,
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
        area,
    )?;
    // `Output` compares in constant time.
    Ok(Output::new(&out)? == *expected)
}

/// Verified against when the user does not exist, so that an unknown user costs the same
/// time as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_in("timing-equaliser-not-a-password", &mut Vec::new()).ok());

/// Hashes and verifies passwords with a bound on the work in flight.
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    /// Work areas of finished hashes, for the next ones: never more than `concurrency`.
    areas: Arc<Mutex<Vec<WorkArea>>>,
    /// Hashes asked for and not finished (waiting for a slot or running).
    demand: Arc<AtomicUsize>,
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

/// Counts a hash as asked for until it is finished or given up. The last one out frees the
/// pooled work areas: the count drops under the pool's lock, so two hashes finishing together
/// cannot both see the other and leave their areas behind.
struct Demand {
    counter: Arc<AtomicUsize>,
    areas: Arc<Mutex<Vec<WorkArea>>>,
}

impl Demand {
    fn enter(counter: &Arc<AtomicUsize>, areas: &Arc<Mutex<Vec<WorkArea>>>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self {
            counter: counter.clone(),
            areas: areas.clone(),
        }
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        let mut pool = self.areas.lock().unwrap_or_else(|e| e.into_inner());
        if self.counter.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The end of a burst: give the memory back.
            *pool = Vec::new();
        }
    }
}

/// How long a client is told to wait when every slot stayed busy.
const RETRY_AFTER_SECS: u64 = 1;

impl Passwords {
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            areas: Arc::default(),
            demand: Arc::default(),
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

    /// Runs `work` on a blocking thread once a slot is free, with a reused work area.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut WorkArea) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let demand = Demand::enter(&self.demand, &self.areas);
        let permit = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS,
            })?
            .map_err(AppError::internal)?;
        let (running, areas) = (self.running.clone(), self.areas.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(&running);
            let lock = || areas.lock().unwrap_or_else(|e| e.into_inner());
            let mut area = lock().pop().unwrap_or_default();
            let result = work(&mut area);
            lock().push(area);
            // Frees the pool if this was the last hash asked for.
            drop(demand);
            result
        })
        .await
        .map_err(AppError::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move |area| hash_in(&password, area))
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
        self.run(move |area| match stored_hash {
            Some(hash) => verify_in(&password, &hash, area),
            None => {
                if let Some(dummy) = DUMMY_HASH.as_deref() {
                    verify_in(&password, dummy, area);
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

    #[test]
    fn hashes_interoperate_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut area = Vec::new();
        let ours = hash_in("pw one", &mut area).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"pw one", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"pw two")
            .unwrap()
            .to_string();
        assert!(verify_in("pw two", &theirs, &mut area));
        assert!(!verify_in("pw one", &theirs, &mut area));
        assert!(!verify_in("pw two", "not a hash", &mut area));
        // Other parameters (a hash made with older settings) verify too.
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let custom = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let older = custom.hash_password(b"pw three").unwrap().to_string();
        assert!(verify_in("pw three", &older, &mut area));
        assert_eq!(area.len(), 8 * 1024);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn work_areas_are_freed_once_a_burst_ends() {
        let passwords = Passwords::new(2, Duration::from_secs(30));
        let burst: Vec<_> = (0..6)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.hash("pw".into()).await })
            })
            .collect();
        for hash in burst {
            hash.await.unwrap().unwrap();
        }
        let pooled = passwords.areas.lock().unwrap().len();
        assert_eq!(pooled, 0, "an idle server keeps no work area");
        assert_eq!(passwords.demand.load(Ordering::SeqCst), 0);
    }
}
