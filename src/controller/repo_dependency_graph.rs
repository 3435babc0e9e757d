//! RepoDependencyGraph: analyses declared and discovered dependencies into status.
//!
//! load: the graph and the text of its discovery sources, through a
//! [`SourceFetcher`] (ConfigMaps in the graph's namespace; repository paths through
//! the GitHub contents API) -> decide: `logic::discovery`, `logic::graph` and
//! `logic::graph_status` -> status (written only when it changed) and Events.
//!
//! Nothing outside the object is changed, so there is no finalizer. ConfigMaps are
//! watched: editing one that a graph names reconciles that graph. Repository files
//! have no watch; they are read again on every drift check (`requeueInterval`).
//! A source that cannot be read is reported in `status.discoveryErrors` and never
//! fails the graph.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status, publish};
use crate::api::RepoDependencyGraph;
use crate::api::repo_dependency_graph::{DiscoveryError, DiscoverySource};
use crate::logic::discovery::{self, SourceFile};
use crate::logic::graph_status::{self, Observed};

const MANAGER: &str = "switchyard-graphs";
/// Sources read at once per reconcile.
const FETCH_CONCURRENCY: usize = 8;
/// How soon a graph whose sources failed transiently reads them again.
const SOURCE_RETRY: Duration = Duration::from_secs(30);
/// The message of a repository source when the operator config has no `github` section.
pub const NEEDS_GITHUB: &str =
    "repository sources need the GitHub integration (the github section of the operator config)";

/// Why a discovery source could not be read. The text is shown in status: it must
/// never carry credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// A retry may succeed (API unavailable, timeout, rate limit).
    #[error("{0}")]
    Retryable(String),
    /// Nothing changes until the user does (missing ConfigMap or key, no such path).
    #[error("{0}")]
    Permanent(String),
}

/// Reads the text of a discovery source. Each kind of source has one
/// implementation; [`Sources`] picks the right one.
#[async_trait]
pub trait SourceFetcher: Send + Sync {
    /// The text of `source`, a discovery source of `repository` in a graph of `namespace`.
    async fn fetch(&self, namespace: &str, repository: &str, source: &DiscoverySource) -> Result<String, FetchError>;
}

/// `configMapRef` sources: a key of a ConfigMap in the graph's namespace.
pub struct ConfigMapFetcher {
    client: Client,
}

impl ConfigMapFetcher {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SourceFetcher for ConfigMapFetcher {
    async fn fetch(&self, namespace: &str, _repository: &str, source: &DiscoverySource) -> Result<String, FetchError> {
        let Some(r) = &source.config_map_ref else {
            return Err(FetchError::Permanent("not a configMapRef source".into()));
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let cm = match api.get_opt(&r.name).await {
            Ok(Some(cm)) => cm,
            Ok(None) => return Err(FetchError::Permanent(format!("ConfigMap {} does not exist", r.name))),
            Err(kube::Error::Api(e)) if e.code == 403 => {
                return Err(FetchError::Permanent(format!("not allowed to read ConfigMap {}: {}", r.name, e.message)));
            }
            Err(e) => return Err(FetchError::Retryable(format!("reading ConfigMap {}: {e}", r.name))),
        };
        if let Some(text) = cm.data.as_ref().and_then(|d| d.get(&r.key)) {
            return Ok(text.clone());
        }
        match cm.binary_data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(bytes) => String::from_utf8(bytes.0.clone())
                .map_err(|_| FetchError::Permanent(format!("ConfigMap {} key {} is not UTF-8 text", r.name, r.key))),
            None => Err(FetchError::Permanent(format!("ConfigMap {} has no key {}", r.name, r.key))),
        }
    }
}

/// `path` sources when the operator config has no `github` section: each is
/// reported, the rest of the graph is analysed as usual.
pub struct GithubUnavailable;

#[async_trait]
impl SourceFetcher for GithubUnavailable {
    async fn fetch(
        &self,
        _namespace: &str,
        _repository: &str,
        _source: &DiscoverySource,
    ) -> Result<String, FetchError> {
        Err(FetchError::Permanent(NEEDS_GITHUB.into()))
    }
}

/// `path` sources: the file at `ref` of the repository, through the GitHub contents
/// API with the operator's GitHub token.
pub struct GithubFetcher {
    github: Arc<crate::github::Github>,
}

impl GithubFetcher {
    pub fn new(github: Arc<crate::github::Github>) -> Self {
        Self { github }
    }
}

#[async_trait]
impl SourceFetcher for GithubFetcher {
    async fn fetch(&self, _namespace: &str, repository: &str, source: &DiscoverySource) -> Result<String, FetchError> {
        use crate::backends::github::GithubError;
        let Some(path) = source.path.as_deref() else {
            return Err(FetchError::Permanent("not a path source".into()));
        };
        let client = self.github.client().await.map_err(|e| FetchError::Retryable(e.to_string()))?;
        let file = match client.file(repository, path, source.r#ref.as_deref()).await {
            Ok(file) => file,
            Err(e @ GithubError::RateLimited { .. }) => return Err(FetchError::Retryable(e.to_string())),
            Err(e) if e.is_transient() => return Err(FetchError::Retryable(e.to_string())),
            Err(e) => return Err(FetchError::Permanent(e.to_string())),
        };
        String::from_utf8(file.content)
            .map_err(|_| FetchError::Permanent(format!("{repository}:{path} is not UTF-8 text")))
    }
}

/// Dispatches each source to the fetcher of its kind.
pub struct Sources {
    /// Reads `configMapRef` sources.
    pub config_maps: Arc<dyn SourceFetcher>,
    /// Reads `path` sources from the repository.
    pub repositories: Arc<dyn SourceFetcher>,
}

#[async_trait]
impl SourceFetcher for Sources {
    async fn fetch(&self, namespace: &str, repository: &str, source: &DiscoverySource) -> Result<String, FetchError> {
        match (&source.config_map_ref, &source.path) {
            (Some(_), None) => self.config_maps.fetch(namespace, repository, source).await,
            (None, Some(_)) => self.repositories.fetch(namespace, repository, source).await,
            // The CRD's CEL rule rejects both and neither; an object stored before it may not.
            _ => Err(FetchError::Permanent("exactly one of configMapRef and path must be set".into())),
        }
    }
}

/// What the graph reconciler shares besides the common [`Context`].
pub struct GraphContext {
    pub ctx: Arc<Context>,
    pub sources: Arc<dyn SourceFetcher>,
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let client = ctx.client.clone();
        let (graphs, config_maps) = (ctx.watched::<RepoDependencyGraph>(), ctx.watched::<ConfigMap>());
        let repositories: Arc<dyn SourceFetcher> = match ctx.services.github.clone() {
            Some(github) => Arc::new(GithubFetcher::new(github)),
            None => Arc::new(GithubUnavailable),
        };
        let sources = Sources { config_maps: Arc::new(ConfigMapFetcher::new(client)), repositories };
        let gctx = Arc::new(GraphContext { ctx, sources: Arc::new(sources) });
        let controller = Controller::new(graphs, watcher::Config::default().any_semantic());
        let store = controller.store();
        let controller = controller
            .watches(config_maps, watcher::Config::default().any_semantic(), move |cm| graphs_reading(&store, &cm));
        kit::run(controller, gctx.ctx.clone(), gctx, shutdown).await;
    })
}

/// The graphs in the ConfigMap's namespace with a discovery source in it.
fn graphs_reading(store: &Store<RepoDependencyGraph>, cm: &ConfigMap) -> Vec<ObjectRef<RepoDependencyGraph>> {
    let (namespace, name) = (cm.namespace(), cm.name_any());
    store
        .state()
        .iter()
        .filter(|g| g.namespace() == namespace)
        .filter(|g| {
            g.spec
                .repositories
                .iter()
                .flat_map(|r| &r.discovery)
                .any(|s| s.config_map_ref.as_ref().is_some_and(|r| r.name == name))
        })
        .map(|g| ObjectRef::from_obj(&**g))
        .collect()
}

#[async_trait]
impl Reconciler for GraphContext {
    type Object = RepoDependencyGraph;
    const KIND: &'static str = "RepoDependencyGraph";

    async fn reconcile(&self, graph: Arc<RepoDependencyGraph>) -> Result<Action, Error> {
        reconcile(graph, self).await
    }
}

async fn reconcile(graph: Arc<RepoDependencyGraph>, gctx: &GraphContext) -> Result<Action, Error> {
    if graph.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = graph.namespace().unwrap_or_default();
    let (files, fetch_errors, retrying) = fetch_sources(gctx.sources.as_ref(), &namespace, &graph).await;

    // Analysis of a large graph takes tens of milliseconds of CPU: keep it off the runtime.
    let analysed = graph.clone();
    let decision = tokio::task::spawn_blocking(move || {
        let found = discovery::discover(&files);
        let mut errors = fetch_errors;
        errors.extend(found.errors);
        let spec = &analysed.spec;
        let analysis = crate::logic::graph::analyse(&spec.repositories, &found.edges, &spec.options);
        let spec_bytes = serde_json::to_vec(spec).map_or(0, |v| v.len());
        let observed = Observed {
            analysis: &analysis,
            discovery_errors: &errors,
            retrying,
            generation: analysed.metadata.generation,
            budget: graph_status::status_budget(spec_bytes),
        };
        graph_status::decide(analysed.status.as_ref(), &observed)
    })
    .await
    .map_err(|e| Error::Waiting(format!("analysis did not finish: {e}")))?;

    let api: Api<RepoDependencyGraph> = Api::namespaced(gctx.ctx.client.clone(), &namespace);
    apply_status(&api, graph.as_ref(), graph.status.as_ref(), &decision.status, MANAGER).await?;
    for note in decision.events {
        let type_ = if note.warning { EventType::Warning } else { EventType::Normal };
        publish(&gctx.ctx, graph.as_ref(), type_, note.reason, "Analyse", note.message).await;
    }
    Ok(Action::requeue(if retrying { SOURCE_RETRY } else { gctx.ctx.requeue_interval() }))
}

/// Reads every discovery source of the graph: the files read, one error per source
/// that could not be read, and whether any failure may pass on a retry.
async fn fetch_sources(
    sources: &dyn SourceFetcher,
    namespace: &str,
    graph: &RepoDependencyGraph,
) -> (Vec<SourceFile>, Vec<DiscoveryError>, bool) {
    // Owned pairs: closures over borrowed arguments trip the Send check of the future.
    let wanted: Vec<(String, DiscoverySource)> =
        graph.spec.repositories.iter().flat_map(|r| r.discovery.iter().map(|s| (r.name.clone(), s.clone()))).collect();
    let results: Vec<_> = futures::stream::iter(wanted)
        .map(|(repository, source)| async move {
            let fetched = sources.fetch(namespace, &repository, &source).await;
            (repository, source, fetched)
        })
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut retrying = false;
    for (repository, source, fetched) in results {
        let file = discovery::source_label(&source);
        match fetched {
            Ok(content) => files.push(SourceFile { repository, file, format: source.format, content }),
            Err(e) => {
                retrying |= matches!(e, FetchError::Retryable(_));
                errors.push(DiscoveryError { repository, file, message: e.to_string() });
            }
        }
    }
    (files, errors, retrying)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repo_dependency_graph::{ConfigMapKeyRef, DiscoveryFormat, RepoDependencyGraphSpec, Repository};

    /// Answers with a fixed result and the kind of source it was asked for.
    struct Fixed(Result<&'static str, FetchError>);

    #[async_trait]
    impl SourceFetcher for Fixed {
        async fn fetch(&self, _: &str, repository: &str, source: &DiscoverySource) -> Result<String, FetchError> {
            self.0.clone().map(|text| format!("{text} {repository} {}", discovery::source_label(source)))
        }
    }

    fn source(config_map: Option<&str>, path: Option<&str>) -> DiscoverySource {
        DiscoverySource {
            format: DiscoveryFormat::Compose,
            config_map_ref: config_map.map(|name| ConfigMapKeyRef { name: name.into(), key: "k".into() }),
            path: path.map(str::to_string),
            r#ref: None,
        }
    }

    fn graph(sources: Vec<DiscoverySource>) -> RepoDependencyGraph {
        let repositories = vec![Repository { name: "o/a".into(), depends_on: vec![], discovery: sources }];
        RepoDependencyGraph::new("g", RepoDependencyGraphSpec { repositories, options: Default::default() })
    }

    #[tokio::test]
    async fn each_source_goes_to_its_fetcher_and_failures_are_reported_per_source() {
        let sources = Sources {
            config_maps: Arc::new(Fixed(Ok("cm"))),
            repositories: Arc::new(Fixed(Err(FetchError::Retryable("github is down".into())))),
        };
        let g = graph(vec![source(Some("c"), None), source(None, Some("compose.yml")), source(None, None)]);
        let (files, errors, retrying) = fetch_sources(&sources, "ns", &g).await;
        assert_eq!(files.iter().map(|f| f.content.as_str()).collect::<Vec<_>>(), vec!["cm o/a configmap/c/k"]);
        let failed: Vec<(&str, &str)> = errors.iter().map(|e| (e.file.as_str(), e.message.as_str())).collect();
        assert_eq!(
            failed,
            vec![("compose.yml", "github is down"), ("(no file)", "exactly one of configMapRef and path must be set")]
        );
        assert!(retrying, "a retryable failure asks for an early retry");
    }

    #[tokio::test]
    async fn without_the_github_integration_repository_sources_say_so_and_are_not_retried() {
        let sources = Sources { config_maps: Arc::new(Fixed(Ok("cm"))), repositories: Arc::new(GithubUnavailable) };
        let (files, errors, retrying) =
            fetch_sources(&sources, "ns", &graph(vec![source(None, Some("deploy/k8s.yaml"))])).await;
        assert!(files.is_empty());
        assert_eq!(errors[0].message, NEEDS_GITHUB);
        assert!(!retrying);
    }
}
