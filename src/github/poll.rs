//! The polling fallback for missed webhooks: on start and then every
//! `github.pollInterval`, list each configured repository's open pull requests and
//! reconcile the environments that exist — a closed pull request loses its environment,
//! a new head is deployed. Environments are never created here: that takes a `/preview`.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::{BoxFuture, Shared};
use kube::Api;
use kube::api::ListParams;
use tracing::{info, warn};

use super::{Error, Github, environments};
use crate::api::PreviewEnvironment;
use crate::config::RepositoryTemplate;
use crate::logic::github_webhook::{PullRequestEvent, Trigger};
use crate::logic::pull_request_actions::Decision;
use crate::logic::pull_request_environment::{PULL_REQUEST_LABEL, REPOSITORY_LABEL, repository_label};

/// Runs until `shutdown` resolves.
pub fn run(gh: Arc<Github>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let interval = gh.config.poll_interval;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.clone() => return,
                _ = tick.tick() => {}
            }
            for template in &gh.config.repositories {
                if let Err(e) = poll_repository(&gh, template).await {
                    warn!(repository = %template.repository, reason = e.label(), error = %e, "polling GitHub failed");
                    gh.count("poll", "poll", "failed", e.label());
                }
            }
        }
    })
}

/// Reconciles the environments of one repository with its open pull requests.
pub async fn poll_repository(gh: &Github, template: &RepositoryTemplate) -> Result<(), Error> {
    let client = gh.client().await?;
    let mut open: HashMap<u64, _> =
        client.open_pull_requests(&template.repository).await?.into_iter().map(|pr| (pr.number, pr)).collect();
    let api: Api<PreviewEnvironment> = Api::namespaced(gh.kube.clone(), &template.namespace);
    let selector = format!("{PULL_REQUEST_LABEL},{REPOSITORY_LABEL}={}", repository_label(&template.repository));
    let environments = api.list(&ListParams::default().labels(&selector)).await?;
    for env in environments.items.iter().filter(|e| e.spec.repository.eq_ignore_ascii_case(&template.repository)) {
        let Ok(number) = u64::try_from(env.spec.pull_request) else { continue };
        let event = PullRequestEvent { repository: env.spec.repository.clone(), number, trigger: Trigger::Poll };
        // A pull request missing from the open list is fetched on its own: it is
        // deleted only on GitHub's word that it is closed.
        match environments::handle(gh, &event, template, open.remove(&number)).await {
            Ok(handled) => {
                let reason = handled.decision.label();
                match &handled.decision {
                    Decision::Nothing(_) => {}
                    Decision::Reject(rejection) => {
                        warn!(repository = %event.repository, pull_request = number, environment = %handled.name,
                            result = "rejected", reason, message = %rejection, "poll: environment left as it is");
                        gh.count("poll", "poll", "rejected", reason);
                    }
                    _ => {
                        info!(repository = %event.repository, pull_request = number, namespace = %handled.namespace,
                            environment = %handled.name, result = "accepted", reason, "poll: caught up with a missed event");
                        gh.count("poll", "poll", "accepted", reason);
                    }
                }
            }
            Err(e) => {
                warn!(repository = %event.repository, pull_request = number, reason = e.label(), error = %e,
                    "poll: cannot reconcile an environment");
                gh.count("poll", "poll", "failed", e.label());
            }
        }
    }
    Ok(())
}
