//! PreviewEnvironment decisions, free of I/O: deterministic remote names, the `.env`
//! file and the queue-worker plan here; whether to adopt a site, when to retry a
//! certificate or (re)deploy in [`decide`]; the condition state machine in [`status`].
//!
//! Names are a pure function of (repository, pull request, project) so that a crash
//! between "create" and "record the id" is repaired by looking the object up by
//! name: nothing is ever created twice and nothing is left behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::api::preview_environment::{PreviewEnvironmentSpec, QueueWorker};
use crate::logic::dns;

pub mod class;
mod decide;
pub mod status;

pub use decide::*;

/// Forge's limit on database names.
pub const DATABASE_NAME_MAX: usize = 63;
/// Forge's limit on database user and isolated user names.
pub const USER_NAME_MAX: usize = 32;
/// Linux users Forge reserves; an isolated user must not be one of them.
pub const RESERVED_USERS: &[&str] =
    &["forge", "root", "www-data", "mysql", "redis", "backup", "admin", "nobody", "isolated"];
/// `.env` keys the operator generates; the spec cannot set them.
pub const GENERATED_KEYS: &[&str] = &[
    "APP_URL",
    "DB_CONNECTION",
    "DB_HOST",
    "DB_PORT",
    "DB_DATABASE",
    "DB_USERNAME",
    "DB_PASSWORD",
    "REDIS_DB",
    "REDIS_PREFIX",
];

/// Every remote and local name of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The site's domain; also the Forge site name (custom domain mode).
    pub domain: String,
    /// `pr_<n>_<project>`, capped to 63 with a stable hash suffix.
    pub database: String,
    /// The database user, capped to 32 the same way.
    pub database_user: String,
    /// The site's isolated Linux user, when the site is isolated.
    pub isolated_user: Option<String>,
    /// Prefix of the app's Redis keys.
    pub redis_prefix: String,
}

/// Why names cannot be derived: the spec (or the operator config) must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("no domain: set spec.domain or spec.domainTemplate, or forge.baseDomain in the operator config")]
    NoDomain,
    #[error("domainTemplate renders {0:?}, which is not a valid domain")]
    InvalidDomain(String),
    #[error("isolatedUser {0:?} is reserved by Forge")]
    ReservedUser(String),
}

impl Names {
    /// Derives every name from the spec and the operator's base domain.
    pub fn derive(spec: &PreviewEnvironmentSpec, base_domain: Option<&str>) -> Result<Self, NameError> {
        let n = spec.pull_request;
        let domain = match (&spec.domain, &spec.domain_template, base_domain) {
            (Some(domain), _, _) => domain.clone(),
            (None, Some(template), _) => {
                let rendered = template
                    .replace("{number}", &n.to_string())
                    .replace("{branch}", &dns::to_label(&spec.branch))
                    .replace("{project}", &dns::to_label(&spec.project));
                if !is_domain(&rendered) {
                    return Err(NameError::InvalidDomain(rendered));
                }
                rendered
            }
            (None, None, Some(base)) => format!("pr-{n}.{base}"),
            (None, None, None) => return Err(NameError::NoDomain),
        };
        let seed = format!("{}#{n}#{}", spec.repository, spec.project);
        let base = format!("pr_{n}_{}", spec.project);
        let isolated_user = if spec.site.isolated {
            let user = match &spec.site.isolated_user {
                Some(u) => u.clone(),
                None => capped(&format!("pr{n}_{}", spec.project), USER_NAME_MAX, &seed),
            };
            if RESERVED_USERS.contains(&user.as_str()) {
                return Err(NameError::ReservedUser(user));
            }
            Some(user)
        } else {
            None
        };
        Ok(Self {
            domain,
            database: capped(&base, DATABASE_NAME_MAX, &seed),
            database_user: capped(&base, USER_NAME_MAX, &seed),
            isolated_user,
            redis_prefix: format!("{base}_"),
        })
    }

    /// The Linux user the site and its workers run as.
    pub fn site_user(&self) -> &str {
        self.isolated_user.as_deref().unwrap_or("forge")
    }
}

/// `name` if it fits in `max`, else its head plus `_` and 8 hex of a hash of `seed`,
/// so two long names that share a prefix still differ.
pub fn capped(name: &str, max: usize, seed: &str) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let suffix = &short_hash(seed)[..8];
    let head: String = name.chars().take(max - suffix.len() - 1).collect();
    format!("{}_{suffix}", head.trim_end_matches('_'))
}

fn is_domain(s: &str) -> bool {
    s.len() <= 253 && s.contains('.') && s.split('.').all(dns::is_label)
}

/// Hex SHA-256 of `content`.
pub fn short_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// What the operator puts into `.env` besides the spec's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub app_url: String,
    pub app_key: Option<String>,
    pub database: Option<(String, String, String)>,
    pub redis: Option<(u32, String)>,
}

/// Renders the `.env` file: generated keys first in a fixed order, then the
/// spec's entries sorted by name. The same input always gives the same bytes, so a
/// hash of it tells whether Forge needs a write.
pub fn render_env(generated: &Generated, entries: &BTreeMap<String, String>) -> String {
    let mut lines: Vec<(&str, String)> = vec![("APP_URL", generated.app_url.clone())];
    if let Some(key) = &generated.app_key
        && !entries.contains_key("APP_KEY")
    {
        lines.push(("APP_KEY", key.clone()));
    }
    if let Some((database, user, password)) = &generated.database {
        lines.extend([
            ("DB_CONNECTION", "mysql".to_string()),
            ("DB_HOST", "127.0.0.1".to_string()),
            ("DB_PORT", "3306".to_string()),
            ("DB_DATABASE", database.clone()),
            ("DB_USERNAME", user.clone()),
            ("DB_PASSWORD", password.clone()),
        ]);
    }
    if let Some((db, prefix)) = &generated.redis {
        lines.extend([("REDIS_DB", db.to_string()), ("REDIS_PREFIX", prefix.clone())]);
    }
    let mut out = String::new();
    for (key, value) in lines.into_iter().chain(entries.iter().map(|(k, v)| (k.as_str(), v.clone()))) {
        let _ = writeln!(out, "{key}={}", quote_env(&value));
    }
    out
}

/// A dotenv value: bare when it is plainly safe, else double-quoted with `\`, `"`,
/// `$` and newlines escaped (phpdotenv would otherwise expand `${...}`).
pub fn quote_env(value: &str) -> String {
    let plain = value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:@,+=".contains(&b));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The supervisor command of a queue worker. `--name` keeps two workers with the
/// same queue distinct, since Forge returns no name for a background process.
pub fn worker_command(worker: &QueueWorker, isolated_user: Option<&str>) -> String {
    let mut command =
        format!("php artisan queue:work {} --queue={} --name={}", worker.connection, worker.queue, worker.name);
    if let Some(tries) = worker.tries {
        let _ = write!(command, " --tries={tries}");
    }
    if let Some(timeout) = worker.timeout {
        let _ = write!(command, " --timeout={timeout}");
    }
    match isolated_user {
        // Forge's API starts background processes only as `root` or `forge`. `forge` can read
        // every other site on the server, so an isolated site's worker starts as root and
        // drops to the site's user before any of the site's code runs: setpriv execs the
        // worker in place (no shell, no root parent left). Every part of the line comes from
        // CRD-validated names (`[a-z0-9_,:-]`), so nothing in it is interpreted.
        Some(user) => format!("setpriv --reuid={user} --regid={user} --init-groups --reset-env -- {command}"),
        None => command,
    }
}

/// The user Forge starts a worker as: see [`worker_command`].
pub fn worker_user(isolated_user: Option<&str>) -> &'static str {
    if isolated_user.is_some() { "root" } else { "forge" }
}

/// A worker as Forge shows it: (id, command, processes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedWorker {
    pub id: u64,
    pub command: String,
    pub processes: i64,
}

/// What to change so the site's workers equal the spec's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerPlan<'a> {
    /// Workers to create.
    pub create: Vec<&'a QueueWorker>,
    /// Forge process ids to delete: extras, duplicates, and ones whose settings changed.
    pub delete: Vec<u64>,
    /// Ids of processes that already match, in spec order.
    pub keep: Vec<u64>,
}

/// Matches observed workers to desired ones by command and process count.
pub fn plan_workers<'a>(
    desired: &'a [QueueWorker],
    isolated_user: Option<&str>,
    observed: &[ObservedWorker],
) -> WorkerPlan<'a> {
    let mut plan = WorkerPlan::default();
    let mut unused: Vec<&ObservedWorker> = observed.iter().collect();
    for worker in desired {
        let command = worker_command(worker, isolated_user);
        match unused.iter().position(|o| o.command == command && o.processes == i64::from(worker.processes)) {
            Some(i) => plan.keep.push(unused.swap_remove(i).id),
            None => plan.create.push(worker),
        }
    }
    plan.delete = unused.iter().map(|o| o.id).collect();
    plan.delete.sort_unstable();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::preview_environment::SiteSettings;

    fn spec(project: &str, number: i64) -> PreviewEnvironmentSpec {
        serde_json::from_value(serde_json::json!({
            "repository": "acme/shop", "pullRequest": number, "branch": "feature/Checkout",
            "project": project
        }))
        .unwrap()
    }

    #[test]
    fn names_follow_the_documented_patterns() {
        let names = Names::derive(&spec("shop", 42), Some("preview.example.com")).unwrap();
        assert_eq!(names.domain, "pr-42.preview.example.com");
        assert_eq!(names.database, "pr_42_shop");
        assert_eq!(names.database_user, "pr_42_shop");
        assert_eq!(names.isolated_user.as_deref(), Some("pr42_shop"));
        assert_eq!(names.redis_prefix, "pr_42_shop_");
    }

    #[test]
    fn long_names_are_capped_with_a_stable_distinct_suffix() {
        let project = "a_very_long_project_name_that_goes_on_and_on";
        let a = Names::derive(&spec(project, 7), Some("x.dev")).unwrap();
        let b = Names::derive(&spec(project, 7), Some("x.dev")).unwrap();
        let mut other = spec(project, 7);
        other.repository = "acme/other".into();
        let c = Names::derive(&other, Some("x.dev")).unwrap();
        assert_eq!(a, b, "stable across calls");
        assert!(a.database.len() <= DATABASE_NAME_MAX && a.database_user.len() <= USER_NAME_MAX);
        assert!(a.isolated_user.as_ref().unwrap().len() <= USER_NAME_MAX);
        assert_ne!(a.database_user, c.database_user, "a different repository gets a different hash");
        let isolated = a.isolated_user.unwrap();
        assert!(isolated.starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(isolated.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
    }

    #[test]
    fn domain_comes_from_spec_template_or_base() {
        let mut s = spec("shop", 3);
        assert_eq!(Names::derive(&s, None), Err(NameError::NoDomain));
        s.domain_template = Some("{branch}-{number}.apps.example.com".into());
        assert_eq!(Names::derive(&s, None).unwrap().domain, "feature-checkout-3.apps.example.com");
        s.domain_template = Some("{number}_bad.example.com".into());
        assert!(matches!(Names::derive(&s, None), Err(NameError::InvalidDomain(_))));
        s.domain_template = None;
        s.domain = Some("shop.example.org".into());
        assert_eq!(Names::derive(&s, Some("ignored.dev")).unwrap().domain, "shop.example.org");
    }

    #[test]
    fn not_isolated_means_forge_user_and_reserved_names_are_refused() {
        let mut s = spec("shop", 3);
        s.site = SiteSettings { isolated: false, ..SiteSettings::default() };
        let names = Names::derive(&s, Some("x.dev")).unwrap();
        assert_eq!(names.isolated_user, None);
        assert_eq!(names.site_user(), "forge");
        s.site = SiteSettings { isolated_user: Some("forge".into()), ..SiteSettings::default() };
        assert_eq!(Names::derive(&s, Some("x.dev")), Err(NameError::ReservedUser("forge".into())));
    }

    #[test]
    fn env_is_deterministic_generated_first_and_quoted() {
        let generated = Generated {
            app_url: "https://pr-1.x.dev".into(),
            app_key: Some("base64:abc=".into()),
            database: Some(("pr_1_shop".into(), "pr_1_shop".into(), "p@ss w\"rd$X".into())),
            redis: Some((4, "pr_1_shop_".into())),
        };
        let entries: BTreeMap<String, String> =
            [("Z_LAST".to_string(), "1".to_string()), ("MAIL_FROM".to_string(), "a b".to_string())].into();
        let env = render_env(&generated, &entries);
        assert_eq!(
            env,
            "APP_URL=https://pr-1.x.dev\nAPP_KEY=base64:abc=\nDB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3306\n\
             DB_DATABASE=pr_1_shop\nDB_USERNAME=pr_1_shop\nDB_PASSWORD=\"p@ss w\\\"rd\\$X\"\nREDIS_DB=4\n\
             REDIS_PREFIX=pr_1_shop_\nMAIL_FROM=\"a b\"\nZ_LAST=1\n"
        );
        assert_eq!(env, render_env(&generated, &entries));
        let with_key: BTreeMap<String, String> = [("APP_KEY".to_string(), "mine".to_string())].into();
        let env = render_env(&generated, &with_key);
        assert_eq!(env.matches("APP_KEY=").count(), 1);
        assert!(env.contains("APP_KEY=mine"));
    }

    fn worker(name: &str, processes: i32) -> QueueWorker {
        serde_json::from_value(serde_json::json!({"name": name, "processes": processes})).unwrap()
    }

    #[test]
    fn worker_plan_keeps_matches_creates_missing_deletes_extras_and_changed() {
        let desired = vec![worker("default", 1), worker("mail", 2)];
        let observed = vec![
            ObservedWorker { id: 10, command: worker_command(&desired[0], None), processes: 1 },
            ObservedWorker { id: 11, command: worker_command(&desired[1], None), processes: 1 },
            ObservedWorker { id: 12, command: worker_command(&desired[0], None), processes: 1 },
            ObservedWorker { id: 13, command: "php artisan horizon".into(), processes: 1 },
        ];
        let plan = plan_workers(&desired, None, &observed);
        assert_eq!(plan.keep, vec![10]);
        assert_eq!(plan.create.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), vec!["mail"]);
        assert_eq!(plan.delete, vec![11, 12, 13]);
        assert_eq!(plan_workers(&[], None, &[]), WorkerPlan::default());
    }

    #[test]
    fn worker_commands_are_distinct_by_name() {
        let mut w = worker("a", 1);
        w.tries = Some(3);
        w.timeout = Some(60);
        assert_eq!(
            worker_command(&w, None),
            "php artisan queue:work redis --queue=default --name=a --tries=3 --timeout=60"
        );
        assert_ne!(worker_command(&worker("a", 1), None), worker_command(&worker("b", 1), None));
    }

    #[test]
    fn isolated_workers_start_as_root_and_drop_to_the_site_user_before_running_code() {
        let w = worker("a", 1);
        assert_eq!(worker_user(None), "forge");
        assert_eq!(worker_user(Some("pr42_shop")), "root");
        assert_eq!(
            worker_command(&w, Some("pr42_shop")),
            "setpriv --reuid=pr42_shop --regid=pr42_shop --init-groups --reset-env -- \
             php artisan queue:work redis --queue=default --name=a"
        );
    }

    #[test]
    fn capped_keeps_short_names() {
        assert_eq!(capped("pr_1_x", 32, "seed"), "pr_1_x");
        let long = capped(&"x".repeat(40), 32, "seed");
        assert_eq!(long.len(), 32);
        assert!(long.ends_with(&short_hash("seed")[..8]));
    }
}
