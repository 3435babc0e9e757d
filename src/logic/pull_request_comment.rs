//! The body of the one pull request comment that reports an environment: URL, state,
//! last deployment and what failed. A pure function of the object, so the comment is
//! edited exactly when something it shows changes (timestamps of conditions are left
//! out for that reason).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::api::PreviewEnvironment;
use crate::api::conditions::{self, READY, RECONCILING, STALLED};

/// First line of every comment, naming the environment, so a comment whose id was
/// lost (crash between create and status write) is found and adopted, not duplicated.
pub fn marker(namespace: &str, name: &str) -> String {
    format!("<!-- switchyard:preview-environment {namespace}/{name} -->")
}

/// `hex(SHA-256(body))`, kept in status to skip edits that would change nothing.
pub fn body_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// Longest text taken from a condition message.
const MAX_MESSAGE: usize = 300;

/// Removes `user:password@` from URLs, in case a message quotes one.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(|c: char| c == '/' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(userinfo_end) => rest = &tail[userinfo_end + 1..],
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Text safe inside a Markdown table cell or list item: one line, no HTML, no pipes,
/// no credentials in URLs, bounded length.
fn inline(text: &str) -> String {
    let one_line: String = strip_userinfo(text).split_whitespace().collect::<Vec<_>>().join(" ");
    let mut safe: String =
        one_line.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|").replace('`', "'");
    if safe.chars().count() > MAX_MESSAGE {
        safe = safe.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    safe
}

fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The environment's state as one phrase.
fn state(env: &PreviewEnvironment, conds: &[Condition]) -> String {
    if env.metadata.deletion_timestamp.is_some() {
        return "🗑️ Deleting".into();
    }
    if conds.is_empty() {
        return "⏳ Pending (not reconciled yet)".into();
    }
    let detail = |c: &Condition| {
        if c.message.is_empty() { inline(&c.reason) } else { format!("{}: {}", inline(&c.reason), inline(&c.message)) }
    };
    if let Some(stalled) = conditions::get(conds, STALLED).filter(|c| c.status == "True") {
        return format!("❌ Stalled — {}", detail(stalled));
    }
    match conditions::get(conds, READY) {
        Some(c) if c.status == "True" => "✅ Ready".into(),
        Some(c) if conditions::is_true(conds, RECONCILING) => format!("⏳ In progress — {}", detail(c)),
        Some(c) => format!("⚠️ Not ready — {}", detail(c)),
        None => "⏳ In progress".into(),
    }
}

/// Failures to list: a True `Stalled`, step conditions whose reason ends in `Failed`
/// or `Error`, and a failed last deployment.
fn failures(env: &PreviewEnvironment, conds: &[Condition]) -> Vec<String> {
    let mut out = Vec::new();
    for c in conds {
        let is_step = c.type_ != READY && c.type_ != RECONCILING && c.type_ != STALLED;
        let failed_step =
            is_step && c.status != "True" && (c.reason.ends_with("Failed") || c.reason.ends_with("Error"));
        if failed_step {
            out.push(format!("`{}` {}: {}", inline(&c.type_), inline(&c.reason), inline(&c.message)));
        }
    }
    if let Some(d) = env.status.as_ref().and_then(|s| s.last_deployment.as_ref())
        && d.status.eq_ignore_ascii_case("failed")
    {
        let sha = d.sha.as_deref().map(|s| format!(" of `{}`", short_sha(&inline(s)))).unwrap_or_default();
        out.push(format!("Deployment #{}{sha} failed", d.id));
    }
    out
}

/// The comment body for `env`.
pub fn render(env: &PreviewEnvironment) -> String {
    let namespace = env.namespace().unwrap_or_default();
    let name = env.name_any();
    let status = env.status.as_ref();
    let conds: &[Condition] = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let url = match status.and_then(|s| s.url.as_deref()) {
        Some(u) => inline(u),
        None => "not assigned yet".into(),
    };
    let head = match env.spec.head_sha.as_deref() {
        Some(sha) => format!("`{}` on `{}`", short_sha(&inline(sha)), inline(&env.spec.branch)),
        None => format!("`{}`", inline(&env.spec.branch)),
    };
    let deployment = match status.and_then(|s| s.last_deployment.as_ref()) {
        Some(d) => {
            let sha = d.sha.as_deref().map(|s| format!(" of `{}`", short_sha(&inline(s)))).unwrap_or_default();
            let when = d
                .finished_at
                .as_ref()
                .or(d.started_at.as_ref())
                .map(|t| format!(" at {}", t.0.strftime("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            format!("#{} {}{sha}{when}", d.id, inline(&d.status))
        }
        None => "none yet".into(),
    };
    let mut body = format!(
        "{}\n### Preview environment `{}`\n\n| | |\n|---|---|\n| URL | {url} |\n| State | {} |\n| Head | {head} |\n| Last deployment | {deployment} |\n",
        marker(&namespace, &name),
        inline(&name),
        state(env, conds),
    );
    let failed = failures(env, conds);
    if !failed.is_empty() {
        body.push_str("\n**What failed**\n\n");
        for f in failed {
            body.push_str(&format!("- {f}\n"));
        }
    }
    body.push_str(&format!(
        "\n<sub>switchyard · `kubectl -n {} get previewenvironment {}` · comment `/update` to redeploy the latest commit, `/destroy` to remove the environment</sub>\n",
        inline(&namespace),
        inline(&name)
    ));
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::Status;
    use crate::api::preview_environment::LastDeployment;
    use serde_json::json;

    fn env() -> PreviewEnvironment {
        serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment",
            "metadata": {"name": "acme-shop-pr-2", "namespace": "previews"},
            "spec": {"repository": "acme/shop", "pullRequest": 2, "branch": "feature", "project": "shop",
                     "headSha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "forge": {"serverId": 1}}
        }))
        .unwrap()
    }

    fn with_condition(
        mut e: PreviewEnvironment,
        type_: &str,
        status: Status,
        reason: &str,
        message: &str,
    ) -> PreviewEnvironment {
        let s = e.status.get_or_insert_with(Default::default);
        conditions::set(&mut s.conditions, type_, status, reason, message, Some(1));
        e
    }

    #[test]
    fn a_new_environment_is_pending_with_its_head() {
        let body = render(&env());
        assert!(body.starts_with("<!-- switchyard:preview-environment previews/acme-shop-pr-2 -->\n"));
        assert!(body.contains("| URL | not assigned yet |"));
        assert!(body.contains("| State | ⏳ Pending"));
        assert!(body.contains("| Head | `ec26c3e` on `feature` |"));
        assert!(body.contains("| Last deployment | none yet |"));
        assert!(!body.contains("What failed"));
    }

    #[test]
    fn ready_shows_url_and_deployment() {
        let mut e = with_condition(env(), READY, Status::True, "Ready", "");
        let s = e.status.as_mut().unwrap();
        s.url = Some("https://pr-2.preview.example.com".into());
        s.last_deployment = Some(LastDeployment {
            id: 12,
            status: "finished".into(),
            sha: Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821".into()),
            ..Default::default()
        });
        let body = render(&e);
        assert!(body.contains("| URL | https://pr-2.preview.example.com |"), "{body}");
        assert!(body.contains("| State | ✅ Ready |"), "{body}");
        assert!(body.contains("| Last deployment | #12 finished of `ec26c3e` |"), "{body}");
    }

    #[test]
    fn failures_are_listed_with_their_reasons() {
        let e = with_condition(env(), READY, Status::False, "DatabaseFailed", "cloning failed");
        let e = with_condition(e, STALLED, Status::True, "SnapshotMissing", "database shop_snapshot does not exist");
        let mut e = with_condition(e, "DatabaseReady", Status::False, "CloneFailed", "table orders: lost connection");
        e.status.as_mut().unwrap().last_deployment =
            Some(LastDeployment { id: 13, status: "failed".into(), ..Default::default() });
        let body = render(&e);
        assert!(
            body.contains("| State | ❌ Stalled — SnapshotMissing: database shop_snapshot does not exist |"),
            "{body}"
        );
        assert!(body.contains("- `DatabaseReady` CloneFailed: table orders: lost connection"), "{body}");
        assert!(body.contains("- Deployment #13 failed"), "{body}");
    }

    #[test]
    fn only_what_is_shown_changes_the_body() {
        let a = with_condition(env(), READY, Status::False, "Provisioning", "creating site");
        let mut b = a.clone();
        b.status.as_mut().unwrap().environment_hash = Some("abc".into());
        b.status.as_mut().unwrap().conditions[0].last_transition_time =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(body_hash(&render(&a)), body_hash(&render(&b)));
        let c = with_condition(a.clone(), READY, Status::False, "Provisioning", "creating database");
        assert_ne!(render(&a), render(&c));
    }

    #[test]
    fn messages_cannot_inject_markup_or_leak_credentials() {
        let e = with_condition(
            env(),
            READY,
            Status::False,
            "DeployError",
            "git clone https://x-token:ghp_secret123@github.com/acme/shop failed | <script>\nnext line",
        );
        let body = render(&e);
        assert!(!body.contains("ghp_secret123") && !body.contains("x-token"), "{body}");
        assert!(!body.contains("<script>") && body.contains("&lt;script&gt;"), "{body}");
        assert!(body.contains("https://github.com/acme/shop failed \\| &lt;script&gt; next line"), "{body}");
    }

    #[test]
    fn userinfo_is_stripped_only_from_urls() {
        assert_eq!(
            strip_userinfo("see https://u:p@h/x and mail me@example.com"),
            "see https://h/x and mail me@example.com"
        );
        assert_eq!(strip_userinfo("mysql://root:pw@127.0.0.1:3306"), "mysql://127.0.0.1:3306");
    }
}
