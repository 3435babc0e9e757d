//! The deploy step: the deployment script, then a deployment whenever the sha,
//! redeploy token or `.env` changed (`logic::preview::deploy_action`), followed to
//! its end; a failed one is retried with backoff. The request is recorded in
//! status before Forge is asked, so a crash in between adopts, never doubles.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Pass, elapsed_since};
use crate::api::preview_environment::{DeploymentRequest, LastDeployment};
use crate::controller::{Error, kit};
use crate::forge::Deployment;
use crate::logic::preview::status::{Outcome, Reason, StepCondition};
use crate::logic::preview::{self, DeployAction, DeployTarget, RecordedDeployment};

/// What status records of a deployment just started for `target`.
fn started(deployment: &Deployment, target: &DeployTarget, attempt: i32) -> LastDeployment {
    LastDeployment {
        id: deployment.id as i64,
        status: deployment.status.clone(),
        sha: target.sha.clone(),
        redeploy_token: target.redeploy_token.clone(),
        environment_hash: target.environment_hash.clone(),
        attempts: Some(attempt),
        started_at: Some(Time(Timestamp::now())),
        finished_at: deployment.is_terminal().then(|| Time(Timestamp::now())),
    }
}

fn recorded(d: &LastDeployment) -> RecordedDeployment {
    RecordedDeployment {
        target: DeployTarget {
            sha: d.sha.clone(),
            redeploy_token: d.redeploy_token.clone(),
            environment_hash: d.environment_hash.clone(),
        },
        status: d.status.clone(),
        attempts: d.attempts.unwrap_or(1).max(1) as u32,
        finished_ago: d.finished_at.as_ref().map(|t| elapsed_since(t.0)),
    }
}

impl Pass<'_> {
    /// The deployment script, when the spec sets one.
    pub(super) async fn deploy_settings(&mut self) -> Result<(), Error> {
        if self.settled(StepCondition::Deployed) {
            return Ok(());
        }
        let (forge, server, site) = (self.forge(), self.server(), self.site_id());
        if let Some(script) = &self.env.spec.deploy.script {
            let current = forge.get_deployment_script(server, site).await?;
            if current.content.as_deref() != Some(script.as_str()) {
                forge.put_deployment_script(server, site, script, None).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn deploy(&mut self) -> Result<Outcome, Error> {
        let (forge, server, site) = (self.forge(), self.server(), self.site_id());
        let target = DeployTarget {
            sha: self.env.spec.head_sha.clone(),
            redeploy_token: self.env.spec.deploy.redeploy_token.clone(),
            environment_hash: self.status.environment_hash.clone(),
        };
        // A request recorded before a crash: adopt the deployment it started, if any.
        if let Some(request) = self.status.deployment_request.clone() {
            let newest = forge.list_deployments(server, site, Some(1)).await?.into_iter().next();
            let deployment = match newest {
                Some(d) if Some(d.id as i64) > request.after_id => d,
                _ => forge.trigger_deployment(server, site).await?,
            };
            let requested = DeployTarget {
                sha: request.sha.clone(),
                redeploy_token: request.redeploy_token.clone(),
                environment_hash: request.environment_hash.clone(),
            };
            self.status.last_deployment = Some(started(&deployment, &requested, request.attempt));
            self.status.deployment_request = None;
            self.save().await?;
        }
        for _ in 0..2 {
            let last = self.status.last_deployment.as_ref().map(recorded);
            match preview::deploy_action(&target, last.as_ref()) {
                DeployAction::Done => return Ok(Outcome::Done("deployed".into())),
                DeployAction::Follow => {
                    let Some(last) = self.status.last_deployment.as_mut() else { break };
                    let Some(observed) = kit::forge_found(forge.get_deployment(server, site, last.id as u64).await)?
                    else {
                        self.status.last_deployment = None;
                        continue;
                    };
                    last.status = observed.status.clone();
                    if observed.is_terminal() {
                        last.finished_at = Some(Time(Timestamp::now()));
                        continue;
                    }
                    let message = format!("deployment {} is {}", last.id, last.status);
                    return Ok(Outcome::waiting(Reason::Deploying, message));
                }
                DeployAction::RetryIn(wait) => {
                    self.poll_in(wait.max(Duration::from_secs(1)));
                    let last = self.status.last_deployment.as_ref().map(|d| d.id).unwrap_or_default();
                    let message = format!("deployment {last} failed; retrying in {}s", wait.as_secs());
                    return Ok(Outcome::waiting(Reason::DeploymentFailed, message));
                }
                DeployAction::Trigger { attempt } => {
                    let after = forge.list_deployments(server, site, Some(1)).await?.first().map(|d| d.id as i64);
                    self.status.deployment_request = Some(DeploymentRequest {
                        after_id: after,
                        sha: target.sha.clone(),
                        redeploy_token: target.redeploy_token.clone(),
                        environment_hash: target.environment_hash.clone(),
                        attempt: attempt as i32,
                        requested_at: Some(Time(Timestamp::now())),
                    });
                    // Recorded before triggering: a crash in between adopts, never doubles.
                    self.save().await?;
                    let deployment = forge.trigger_deployment(server, site).await?;
                    self.status.last_deployment = Some(started(&deployment, &target, attempt as i32));
                    self.status.deployment_request = None;
                    let message = format!("deployment {} queued", deployment.id);
                    return Ok(Outcome::waiting(Reason::Deploying, message));
                }
            }
        }
        Ok(Outcome::waiting(Reason::Deploying, "looking at the newest deployment"))
    }
}
