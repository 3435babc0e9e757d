//! The one pull request comment per PreviewEnvironment: created once, then edited in
//! place whenever what it shows changes (URL, state, last deployment, failures).
//!
//! load: environments labelled with a pull request (from the GitHub integration) ->
//! decide: render the body (`logic::pull_request_comment`), compare its hash with
//! `status.pullRequestComment.bodyHash` -> apply: edit the comment, or adopt the one
//! carrying the environment's marker, or create it -> status: `pullRequestComment`
//! alone, under this controller's own field manager.

use std::sync::Arc;

use futures::future::{BoxFuture, Shared};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use super::kit::{self, Reconciler};
use super::{Context, Error};
use crate::api::PreviewEnvironment;
use crate::api::pull_request_comment::PullRequestComment;
use crate::backends::BackendError;
use crate::backends::github::GithubError;
use crate::github::{self, Github};
use crate::logic::pull_request_comment::{body_hash, marker, render};
use crate::logic::pull_request_environment::PULL_REQUEST_LABEL;

/// Field manager of `status.pullRequestComment`, and nothing else.
pub const MANAGER: &str = "switchyard-pr-comment";

/// What the reconciler shares.
pub struct CommentContext {
    pub ctx: Arc<Context>,
    pub github: Arc<Github>,
}

impl From<github::Error> for Error {
    fn from(e: github::Error) -> Self {
        match e {
            github::Error::Kube(k) => Error::Kube(k),
            other => Error::Backend(BackendError { backend: "github", message: other.to_string() }),
        }
    }
}

/// Runs until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, github: Arc<Github>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let api = ctx.watched::<PreviewEnvironment>();
        let cctx = Arc::new(CommentContext { ctx, github });
        let controller = Controller::new(api, watcher::Config::default().labels(PULL_REQUEST_LABEL));
        kit::run(controller, cctx.ctx.clone(), cctx, shutdown).await;
    })
}

#[async_trait::async_trait]
impl Reconciler for CommentContext {
    type Object = PreviewEnvironment;
    const KIND: &'static str = "PullRequestComment";

    async fn reconcile(&self, env: Arc<PreviewEnvironment>) -> Result<Action, Error> {
        reconcile(&env, self).await
    }
}

async fn reconcile(env: &PreviewEnvironment, cctx: &CommentContext) -> Result<Action, Error> {
    let gh = &cctx.github;
    // Environments of repositories the config does not name are not ours to report,
    // nor are those outside the namespace the config maps the repository to: anyone
    // may write `spec.repository`, and the comment is posted with the operator's token.
    let namespace = env.namespace().unwrap_or_default();
    if gh.config.template(&env.spec.repository).is_none_or(|t| t.namespace != namespace) {
        return Ok(Action::await_change());
    }
    let name = env.name_any();
    let body = render(env);
    let hash = body_hash(&body);
    let current = env.status.as_ref().and_then(|s| s.pull_request_comment.clone());
    if current.as_ref().is_some_and(|c| c.body_hash == hash) {
        return Ok(Action::requeue(cctx.ctx.requeue_interval()));
    }
    let client = gh.client().await?;
    let repository = env.spec.repository.as_str();
    let number = u64::try_from(env.spec.pull_request).unwrap_or_default();
    let edited = match current.as_ref().and_then(|c| u64::try_from(c.id).ok()) {
        Some(id) => match client.update_comment(repository, id, &body).await {
            Ok(c) => Some(c),
            // Deleted by someone: post a new one below.
            Err(GithubError::NotFound { .. }) => None,
            Err(e) => return Err(github::Error::from(e).into()),
        },
        None => None,
    };
    let comment = match edited {
        Some(c) => c,
        None => {
            // A comment posted before its id reached status (a crash in between) is
            // found by its marker and adopted, never duplicated.
            let login = gh.login(&client).await?;
            let mark = marker(&namespace, &name);
            let comments = client.comments(repository, number).await.map_err(github::Error::from)?;
            let ours = comments.into_iter().find(|c| {
                c.user.as_ref().is_some_and(|u| u.login.eq_ignore_ascii_case(&login))
                    && c.body.as_deref().is_some_and(|b| b.starts_with(&mark))
            });
            match ours {
                Some(c) if c.body.as_deref() == Some(body.as_str()) => c,
                Some(c) => client.update_comment(repository, c.id, &body).await.map_err(github::Error::from)?,
                None => {
                    let c = client.create_comment(repository, number, &body).await.map_err(github::Error::from)?;
                    info!(environment = %name, %namespace, repository, pull_request = number, comment = c.id,
                        "posted the pull request comment");
                    c
                }
            }
        }
    };
    let record = PullRequestComment { id: i64::try_from(comment.id).unwrap_or(i64::MAX), body_hash: hash };
    let patch = json!({
        "apiVersion": PreviewEnvironment::api_version(&()),
        "kind": PreviewEnvironment::kind(&()),
        "status": {"pullRequestComment": record},
    });
    let api: Api<PreviewEnvironment> = Api::namespaced(cctx.ctx.client.clone(), &namespace);
    api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(Action::requeue(cctx.ctx.requeue_interval()))
}
