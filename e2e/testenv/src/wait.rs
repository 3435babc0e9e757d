//! Condition polling with a deadline.

use std::fmt::Display;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Something a [`wait_for`] closure can return: `true`/`Some(_)` means done,
/// `false`/`None` means "not yet", and `Err(e)` means "not yet" too, but `e` is
/// remembered and reported if the deadline passes.
pub trait Condition {
    /// What [`wait_for`] returns once the condition holds.
    type Output;
    /// `Ok(output)` when the condition holds, else `Err(Some(reason))` or `Err(None)`.
    fn check(self) -> Result<Self::Output, Option<String>>;
}

impl Condition for bool {
    type Output = ();
    fn check(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Condition for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<C: Condition, E: Display> Condition for Result<C, E> {
    type Output = C::Output;
    fn check(self) -> Result<C::Output, Option<String>> {
        match self {
            Ok(c) => c.check(),
            Err(e) => Err(Some(format!("{e:#}"))),
        }
    }
}

/// Polls `f` until it returns `true` / `Some(_)` / `Ok(true)` / `Ok(Some(_))`, or fails once
/// `timeout` has passed.
///
/// The error message names `what`, the caller's source location, how many attempts were made
/// and the last error `f` returned (if it returned `Result`). Each attempt is itself bounded by
/// the remaining time, so a hanging request cannot overrun the deadline. Polls start at 50 ms and
/// back off to 500 ms.
///
/// ```no_run
/// # async fn demo(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) -> anyhow::Result<()> {
/// use std::time::Duration;
/// switchyard_testenv::wait_for(Duration::from_secs(30), "configmap `x` to be deleted", || async {
///     api.get_opt("x").await.map(|cm| cm.is_none())
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[track_caller]
pub fn wait_for<F, Fut, C>(
    timeout: Duration,
    what: impl Display,
    mut f: F,
) -> impl Future<Output = anyhow::Result<C::Output>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
    C: Condition,
{
    let caller = Location::caller();
    let what = what.to_string();
    async move {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut delay = Duration::from_millis(50);
        let mut attempts = 0u32;
        let mut last_error: Option<String> = None;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining.max(Duration::from_millis(1)), f()).await {
                Ok(outcome) => match outcome.check() {
                    Ok(out) => return Ok(out),
                    Err(Some(e)) => last_error = Some(e),
                    Err(None) => {}
                },
                // Cut off by the deadline: the error before it says more.
                Err(_) => {
                    last_error = Some(match last_error.take() {
                        Some(before) => format!("{before} (and the last attempt did not finish)"),
                        None => "the last attempt itself did not finish".into(),
                    })
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let last = last_error.map(|e| format!("; last error: {e}")).unwrap_or_default();
                bail!(
                    "timed out after {:.1?} waiting for {what} (at {caller}, {attempts} attempts){last}",
                    now - start
                );
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_value_when_ready() {
        let mut n = 0;
        let v = wait_for(Duration::from_secs(5), "n to reach 3", || {
            n += 1;
            let n = n;
            async move { (n >= 3).then_some(n) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn timeout_message_names_condition_and_last_error() {
        let err = wait_for(Duration::from_millis(200), "the impossible", || async { Err::<bool, _>("boom") })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("the impossible"), "{err}");
        assert!(err.contains("last error: boom"), "{err}");
        assert!(err.contains("wait.rs"), "{err}");
    }

    #[tokio::test]
    async fn hanging_attempt_does_not_overrun_deadline() {
        let start = Instant::now();
        let r = wait_for(Duration::from_millis(200), "a hang", std::future::pending::<bool>).await;
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
