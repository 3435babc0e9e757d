//! Acting on a pull request's PreviewEnvironment: gather the facts (GitHub API and
//! apiserver, at decision time), decide (`logic::pull_request_actions`), apply (create,
//! patch or delete). Shared by the webhook endpoint and the polling fallback.

use std::collections::BTreeMap;

use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Error, Github};
use crate::api::PreviewEnvironment;
use crate::backends::github::{GithubError, Permission, PullRequest};
use crate::config::RepositoryTemplate;
use crate::logic::github_webhook::{PullRequestEvent, Trigger};
use crate::logic::pull_request_actions::{
    Commenter, Decision, EnvironmentFacts, Facts, NoChange, PullRequestFacts, authorize, decide,
};
use crate::logic::pull_request_environment::{
    FIELD_MANAGER, REPOSITORY_ANNOTATION, build_spec, environment_name, labels,
};

/// What was decided (and done) for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub decision: Decision,
    pub namespace: String,
    pub name: String,
}

/// The decision's facts about a pull request, from the API's answer.
pub fn pull_request_facts(pr: &PullRequest) -> PullRequestFacts {
    PullRequestFacts {
        open: pr.state == crate::backends::github::PullRequestState::Open,
        merged: pr.merged,
        head_sha: pr.head.sha.clone(),
        head_ref: pr.head.ref_.clone(),
        from_fork: pr.is_from_fork(),
    }
}

fn environment_facts(env: &PreviewEnvironment) -> EnvironmentFacts {
    EnvironmentFacts {
        head_sha: env.spec.head_sha.clone(),
        redeploy_token: env.spec.deploy.redeploy_token.clone(),
        deleting: env.metadata.deletion_timestamp.is_some(),
    }
}

/// An object with the environment's name that is not this pull request's is never touched.
fn ensure_ours(env: &PreviewEnvironment, event: &PullRequestEvent) -> Result<(), Error> {
    let matches = env.spec.repository.eq_ignore_ascii_case(&event.repository)
        && u64::try_from(env.spec.pull_request).ok() == Some(event.number);
    if matches {
        return Ok(());
    }
    Err(Error::NameTaken {
        namespace: env.namespace().unwrap_or_default(),
        name: env.name_any(),
        found: format!("{}#{}", env.spec.repository, env.spec.pull_request),
        expected: format!("{}#{}", event.repository, event.number),
    })
}

/// Decides and applies what `event` asks for. `prefetched` is the pull request when the
/// caller already has it from the API (the poller's list).
pub async fn handle(
    gh: &Github,
    event: &PullRequestEvent,
    template: &RepositoryTemplate,
    prefetched: Option<PullRequest>,
) -> Result<Handled, Error> {
    let namespace = template.namespace.clone();
    let name = environment_name(&event.repository, event.number);
    let handled = |decision| Handled { decision, namespace: namespace.clone(), name: name.clone() };
    let client = gh.client().await?;

    // Permission first: a comment from someone without write access costs one call.
    let commenter = match &event.trigger {
        Trigger::Command { user, .. } => {
            let permission = match client.permission(&event.repository, user).await {
                Ok(p) => p,
                // GitHub answers 404 for accounts it does not know (or hides): no access.
                Err(GithubError::NotFound { .. }) => Permission::None,
                Err(e) => return Err(e.into()),
            };
            let commenter = Commenter {
                login: user.clone(),
                permission: permission.as_str().into(),
                can_write: permission.can_write(),
            };
            if let Err(rejection) = authorize(Some(&commenter)) {
                return Ok(handled(Decision::Reject(rejection)));
            }
            Some(commenter)
        }
        _ => None,
    };
    let pr = match prefetched {
        Some(pr) => pr,
        None => client.pull_request(&event.repository, event.number).await?,
    };
    let api: Api<PreviewEnvironment> = Api::namespaced(gh.kube.clone(), &namespace);
    let existing = api.get_opt(&name).await?;
    if let Some(env) = &existing {
        ensure_ours(env, event)?;
    }
    let facts = Facts {
        pull_request: pull_request_facts(&pr),
        commenter,
        fork_policy: gh.config.fork_policy,
        environment: existing.as_ref().map(environment_facts),
    };
    let decision = decide(&event.trigger, &facts);
    let decision = match decision {
        Decision::Create => {
            // GitHub's spelling of the repository, whatever the config says.
            let repository = pr.base.repo.as_ref().map(|r| r.full_name.clone()).unwrap_or(event.repository.clone());
            let spec = build_spec(template, &repository, event.number, &facts.pull_request)
                .map_err(|e| Error::Template(format!("template of {}: {e}", template.repository)))?;
            let env = PreviewEnvironment {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    labels: Some(labels(&repository, event.number)),
                    annotations: Some(BTreeMap::from([(REPOSITORY_ANNOTATION.to_string(), repository.clone())])),
                    ..Default::default()
                },
                spec,
                status: None,
            };
            let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            match api.create(&params, &env).await {
                Ok(_) => Decision::Create,
                // Another replica (or a redelivery) was first.
                Err(kube::Error::Api(e)) if e.code == 409 => Decision::Nothing(NoChange::AlreadyExists),
                Err(e) => return Err(e.into()),
            }
        }
        Decision::Update { head_sha, redeploy_token } => {
            let mut spec = json!({"headSha": head_sha});
            if let Some(token) = &redeploy_token {
                spec["deploy"] = json!({"redeployToken": token});
            }
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            api.patch(&name, &params, &Patch::Merge(json!({"spec": spec}))).await?;
            Decision::Update { head_sha, redeploy_token }
        }
        Decision::Delete => {
            // Only the object the decision saw: never a newer one created meanwhile.
            let uid = existing.as_ref().and_then(|e| e.uid());
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid, resource_version: None }),
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => Decision::Delete,
                Err(kube::Error::Api(e)) if e.code == 404 => Decision::Nothing(NoChange::NoEnvironment),
                Err(e) => return Err(e.into()),
            }
        }
        other => other,
    };
    Ok(handled(decision))
}
