//! Create-or-adopt helpers. Forge has no idempotency keys, so a POST whose answer was lost
//! (timeout, 5xx after processing) must not simply be repeated: every helper looks the
//! resource up by its deterministic name first, and again after each ambiguous failure.

use super::api::{ForgeApi, ForgeResult};
use super::error::ForgeError;
use super::models::*;
use std::time::Duration;

/// How hard the helpers try before giving up.
#[derive(Debug, Clone, Copy)]
pub struct EnsureOptions {
    pub attempts: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for EnsureOptions {
    fn default() -> Self {
        Self { attempts: 8, min_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(10) }
    }
}

impl EnsureOptions {
    fn backoff(&self, attempt: usize) -> Duration {
        let exp = self.min_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
        // Full jitter in [exp/2, exp).
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// What an `ensure_*` call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensured<T> {
    pub value: T,
    /// `true` when this call created it, `false` when it already existed and was adopted.
    pub created: bool,
}

/// Generic create-or-adopt: `lookup` before every `create`; a 422 "`taken_field` has already
/// been taken" or a retryable error leads to another lookup, never a blind re-POST.
///
/// The operations are plain closures returning futures (not async closures), so the
/// returned future is `Send` and can run inside a controller's reconcile.
pub async fn ensure_with<T, L, LF, C, CF>(
    mut lookup: L,
    mut create: C,
    taken_field: &str,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<T>>
where
    L: FnMut() -> LF,
    LF: Future<Output = ForgeResult<Option<T>>>,
    C: FnMut() -> CF,
    CF: Future<Output = ForgeResult<T>>,
{
    let mut last: Option<ForgeError> = None;
    for attempt in 0..opts.attempts.max(1) {
        if let Some(found) = lookup().await? {
            return Ok(Ensured { value: found, created: false });
        }
        match create().await {
            Ok(value) => {
                return Ok(Ensured { value, created: true });
            }
            Err(e) if e.is_taken(taken_field) || e.is_retryable() => {
                tracing::debug!(error = %e, attempt, "create failed ambiguously; looking up before retrying");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(opts.backoff(attempt)).await;
    }
    Err(last.unwrap_or(ForgeError::Server { status: 0, message: "gave up creating".into() }))
}

/// Site named `req.name` on `server` (exact match; `filter[name]` may match partially).
pub async fn find_site(api: &dyn ForgeApi, server: u64, name: &str) -> ForgeResult<Option<Site>> {
    Ok(api.list_server_sites(server, Some(name)).await?.into_iter().find(|s| s.name == name))
}

pub async fn ensure_site(
    api: &dyn ForgeApi,
    server: u64,
    req: &CreateSite,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<Site>> {
    ensure_with(|| find_site(api, server, &req.name), || api.create_site(server, req), "name", opts).await
}

pub async fn find_database(api: &dyn ForgeApi, server: u64, name: &str) -> ForgeResult<Option<Database>> {
    Ok(api.list_databases(server, Some(name)).await?.into_iter().find(|d| d.name == name))
}

pub async fn ensure_database(
    api: &dyn ForgeApi,
    server: u64,
    req: &CreateDatabase,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<Database>> {
    ensure_with(|| find_database(api, server, &req.name), || api.create_database(server, req), "name", opts).await
}

pub async fn find_database_user(api: &dyn ForgeApi, server: u64, name: &str) -> ForgeResult<Option<DatabaseUser>> {
    Ok(api.list_database_users(server, Some(name)).await?.into_iter().find(|u| u.name == name))
}

pub async fn ensure_database_user(
    api: &dyn ForgeApi,
    server: u64,
    req: &CreateDatabaseUser,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<DatabaseUser>> {
    ensure_with(|| find_database_user(api, server, &req.name), || api.create_database_user(server, req), "name", opts)
        .await
}

/// A site's queue workers (background processes with `site_id`), all pages.
pub async fn workers_for_site(api: &dyn ForgeApi, server: u64, site: u64) -> ForgeResult<Vec<BackgroundProcess>> {
    api.list_background_processes(server, Some(site)).await
}

/// Background processes carry no name in responses, so identity is (site, command, directory, user).
pub async fn ensure_background_process(
    api: &dyn ForgeApi,
    server: u64,
    req: &CreateBackgroundProcess,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<BackgroundProcess>> {
    let lookup = || async move {
        let all = api.list_background_processes(server, req.site_id).await?;
        Ok(all.into_iter().find(|p| {
            p.command == req.command && p.user == req.user && p.directory == req.directory && !going_away(&p.status)
        }))
    };
    ensure_with(lookup, || api.create_background_process(server, req), "command", opts).await
}

pub async fn ensure_domain(
    api: &dyn ForgeApi,
    server: u64,
    site: u64,
    req: &CreateDomain,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<DomainRecord>> {
    let lookup = || async move {
        Ok(api.list_domains(server, site).await?.into_iter().find(|d| d.name == req.name && !going_away(&d.status)))
    };
    ensure_with(lookup, || api.create_domain(server, site, req), "name", opts).await
}

pub async fn ensure_scheduled_job(
    api: &dyn ForgeApi,
    scope: JobScope,
    req: &CreateScheduledJob,
    opts: EnsureOptions,
) -> ForgeResult<Ensured<ScheduledJob>> {
    let lookup = || async move {
        let all = api.list_scheduled_jobs(scope).await?;
        Ok(all.into_iter().find(|j| {
            j.command == req.command && j.user == req.user && j.frequency == req.frequency && !going_away(&j.status)
        }))
    };
    ensure_with(lookup, || api.create_scheduled_job(scope, req), "command", opts).await
}

/// Trigger one deployment. After an ambiguous failure, a deployment newer than the newest one
/// seen before triggering is adopted instead of triggering again (ids grow monotonically).
pub async fn deploy(api: &dyn ForgeApi, server: u64, site: u64, opts: EnsureOptions) -> ForgeResult<Deployment> {
    let before = api.list_deployments(server, site, Some(1)).await?.first().map(|d| d.id);
    let lookup = || async move {
        Ok(api.list_deployments(server, site, Some(1)).await?.into_iter().find(|d| Some(d.id) > before))
    };
    let mut first = true;
    let lookup_after_first = || {
        let skip = std::mem::take(&mut first);
        async move { if skip { Ok(None) } else { lookup().await } }
    };
    Ok(ensure_with(lookup_after_first, || api.trigger_deployment(server, site), "", opts).await?.value)
}

/// Queue a site command and find it (Forge's 202 carries no id): the newest command with
/// this text whose id is above every id seen before queueing.
pub async fn run_command(
    api: &dyn ForgeApi,
    server: u64,
    site: u64,
    command: &str,
    opts: EnsureOptions,
) -> ForgeResult<SiteCommand> {
    let newest = || api.list_site_commands(server, site, Some(command), Some(5));
    let before = newest().await?.iter().filter(|c| c.command == command).map(|c| c.id).max();
    let lookup =
        || async move { Ok(newest().await?.into_iter().find(|c| c.command == command && Some(c.id) > before)) };
    let mut first = true;
    let lookup_after_first = || {
        let skip = std::mem::take(&mut first);
        async move { if skip { Ok(None) } else { Ok(lookup().await?.map(Some)) } }
    };
    let queued: Option<SiteCommand> = ensure_with(
        lookup_after_first,
        || async move {
            let id = api.run_site_command(server, site, command).await?;
            Ok(id.map(|id| SiteCommand { id, command: command.to_string(), ..Default::default() }))
        },
        "",
        opts,
    )
    .await?
    .value;
    // `None`: queued, but Forge sent no id; find it in the list.
    match queued {
        Some(c) => api.get_site_command(server, site, c.id).await,
        None => {
            for attempt in 0..opts.attempts.max(1) {
                if let Some(c) = lookup().await? {
                    return Ok(c);
                }
                tokio::time::sleep(opts.backoff(attempt)).await;
            }
            Err(ForgeError::NotFound { message: "queued command did not appear in the command list".into() })
        }
    }
}

/// Polling without fixed sleeps as synchronisation: backoff between polls, a hard deadline.
#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    pub timeout: Duration,
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// Treat 404 as "not yet" (fresh on-forge sites are briefly 404, contract §4).
    pub tolerate_not_found: bool,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            min_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(30),
            tolerate_not_found: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("still not done after {0:?}")]
    TimedOut(Duration),
}

/// Poll `fetch` until `done` holds (returns the value) or the deadline passes.
pub async fn wait_until<T>(
    mut fetch: impl AsyncFnMut() -> ForgeResult<T>,
    done: impl Fn(&T) -> bool,
    opts: PollOptions,
) -> Result<T, WaitError> {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut interval = opts.min_interval;
    loop {
        match fetch().await {
            Ok(v) if done(&v) => return Ok(v),
            Ok(_) => {}
            Err(ForgeError::NotFound { .. }) if opts.tolerate_not_found => {}
            Err(e) => return Err(e.into()),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(WaitError::TimedOut(opts.timeout));
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(opts.max_interval);
    }
}
