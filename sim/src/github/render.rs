//! GitHub's JSON shapes for the objects of [`super::model`]. URLs point at the
//! simulator (`api` is its origin), so clients can follow them.

use super::model::{Comment, DirEntry, PullRequest, Repository, State, User, World};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// Files larger than this come back without content (`encoding: none`), like GitHub's
/// 1–100 MB range.
pub const MAX_INLINE_CONTENT: usize = 1024 * 1024;

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(time(t))).unwrap_or(Value::Null)
}

fn node_id(kind: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}{id}"))
}

pub fn user(api: &str, u: &User) -> Value {
    let bot = u.login.ends_with("[bot]");
    json!({
        "login": u.login, "id": u.id, "node_id": node_id("User", u.id),
        "url": format!("{api}/users/{}", u.login), "html_url": format!("{api}/{}", u.login),
        "type": if bot { "Bot" } else { "User" }, "site_admin": false,
    })
}

/// A repository that may not exist in the world (a fork named by a pull request's head).
pub fn repository_named(api: &str, world: &World, full: &str) -> Value {
    match full.split_once('/').and_then(|(o, n)| world.repository(o, n).ok()) {
        Some(repo) => repository(api, world, repo),
        None => {
            let owner = full.split('/').next().unwrap_or_default();
            json!({
                "id": 0, "name": full.split('/').nth(1).unwrap_or_default(), "full_name": full,
                "owner": user(api, &world.user_view(owner)), "private": false, "fork": true,
                "url": format!("{api}/repos/{full}"), "html_url": format!("{api}/{full}"),
                "default_branch": "main",
            })
        }
    }
}

pub fn repository(api: &str, world: &World, r: &Repository) -> Value {
    let full = r.full_name();
    json!({
        "id": r.id, "node_id": node_id("Repository", r.id), "name": r.name, "full_name": full,
        "owner": user(api, &world.user_view(&r.owner)), "private": r.private,
        "visibility": if r.private { "private" } else { "public" }, "fork": false,
        "url": format!("{api}/repos/{full}"), "html_url": format!("{api}/{full}"),
        "default_branch": r.default_branch,
    })
}

fn side(api: &str, world: &World, s: &super::model::Side) -> Value {
    let owner = s.repo.split('/').next().unwrap_or_default();
    json!({
        "label": format!("{owner}:{}", s.ref_), "ref": s.ref_, "sha": s.sha,
        "user": user(api, &world.user_view(owner)), "repo": repository_named(api, world, &s.repo),
    })
}

/// A pull request as `GET /repos/{owner}/{repo}/pulls/{number}` returns it; `full`
/// false gives the shorter item of the list endpoint (no `merged`, `mergeable`, counts).
pub fn pull_request(api: &str, world: &World, repo: &Repository, pr: &PullRequest, full: bool) -> Value {
    let name = repo.full_name();
    let url = format!("{api}/repos/{name}/pulls/{}", pr.number);
    let mut v = json!({
        "url": url, "id": pr.id, "node_id": node_id("PullRequest", pr.id),
        "html_url": format!("{api}/{name}/pull/{}", pr.number),
        "issue_url": format!("{api}/repos/{name}/issues/{}", pr.number),
        "comments_url": format!("{api}/repos/{name}/issues/{}/comments", pr.number),
        "number": pr.number,
        "state": match pr.state { State::Open => "open", State::Closed => "closed" },
        "locked": false, "title": pr.title, "user": user(api, &world.user_view(&pr.user)), "body": null,
        "created_at": time(pr.created_at), "updated_at": time(pr.updated_at),
        "closed_at": opt_time(pr.closed_at), "merged_at": opt_time(pr.merged_at),
        "merge_commit_sha": if pr.merged { Value::String(pr.head.sha.clone()) } else { Value::Null },
        "draft": pr.draft, "head": side(api, world, &pr.head), "base": side(api, world, &pr.base),
        "author_association": author_association(repo, &pr.user),
    });
    if full {
        let comments = repo.comments.values().filter(|c| c.issue == pr.number).count();
        let extra = json!({
            "merged": pr.merged, "mergeable": null, "rebaseable": null, "mergeable_state": "unknown",
            "merged_by": null, "comments": comments, "review_comments": 0, "commits": 1,
            "additions": 0, "deletions": 0, "changed_files": 0,
        });
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
            obj.extend(extra);
        }
    }
    v
}

fn author_association(repo: &Repository, login: &str) -> &'static str {
    if repo.owner.eq_ignore_ascii_case(login) {
        "OWNER"
    } else if repo.collaborators.get(&login.to_ascii_lowercase()).is_some_and(|r| *r > super::model::Role::None) {
        "COLLABORATOR"
    } else {
        "NONE"
    }
}

pub fn comment(api: &str, world: &World, repo: &Repository, c: &Comment) -> Value {
    let name = repo.full_name();
    json!({
        "id": c.id, "node_id": node_id("IssueComment", c.id),
        "url": format!("{api}/repos/{name}/issues/comments/{}", c.id),
        "html_url": format!("{api}/{name}/pull/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("{api}/repos/{name}/issues/{}", c.issue),
        "body": c.body, "user": user(api, &world.user_view(&c.user)),
        "created_at": time(c.created_at), "updated_at": time(c.updated_at),
        "author_association": author_association(repo, &c.user),
    })
}

/// Git's blob id of `content`: SHA-1 of `blob <len>\0<content>`.
pub fn blob_sha(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex::encode(h.finalize())
}

/// Base64 in lines of 60 characters, each ending in `\n`, as the contents API sends it.
pub fn wrapped_base64(content: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn content_links(api: &str, name: &str, path: &str, ref_: &str, kind: &str, sha: &str) -> Value {
    let self_url = format!("{api}/repos/{name}/contents/{path}?ref={ref_}");
    let html = format!("{api}/{name}/{}/{ref_}/{path}", if kind == "dir" { "tree" } else { "blob" });
    let git = format!("{api}/repos/{name}/git/{}/{sha}", if kind == "dir" { "trees" } else { "blobs" });
    json!({
        "url": self_url, "html_url": html, "git_url": git,
        "download_url": if kind == "file" { Value::String(format!("{api}/{name}/raw/{ref_}/{path}")) } else { Value::Null },
        "_links": {"self": self_url, "git": git, "html": html},
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(obj), Value::Object(b)) = (a.as_object_mut(), b) {
        obj.extend(b);
    }
    a
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn file(api: &str, repo: &Repository, ref_: &str, path: &str, content: &[u8]) -> Value {
    let sha = blob_sha(content);
    let (encoding, body) =
        if content.len() > MAX_INLINE_CONTENT { ("none", String::new()) } else { ("base64", wrapped_base64(content)) };
    let head = json!({
        "type": "file", "encoding": encoding, "size": content.len(), "name": base_name(path),
        "path": path, "content": body, "sha": sha,
    });
    merge(head, content_links(api, &repo.full_name(), path, ref_, "file", &sha))
}

pub fn directory(api: &str, repo: &Repository, ref_: &str, entries: &[DirEntry]) -> Value {
    let name = repo.full_name();
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let kind = if e.size.is_some() { "file" } else { "dir" };
            let sha = blob_sha(e.path.as_bytes());
            let head = json!({
                "type": kind, "size": e.size.unwrap_or(0), "name": base_name(&e.path), "path": e.path, "sha": sha,
            });
            merge(head, content_links(api, &name, &e.path, ref_, kind, &sha))
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_sha_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(blob_sha(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn base64_is_wrapped_at_60_characters() {
        let text = wrapped_base64(&[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), vec![60, 60, 16]);
        assert!(text.ends_with('\n'));
    }
}
