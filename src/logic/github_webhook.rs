//! GitHub webhook deliveries: the `X-Hub-Signature-256` check, replay detection, and
//! what a delivery asks for — a `/preview`, `/update` or `/destroy` comment on a pull
//! request, a closed pull request, new commits — or why it is ignored.
//!
//! GitHub signs the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//! The delivery id (`X-GitHub-Delivery`) is not signed, so replays are also
//! recognised by what is: a comment's id.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header with the body's signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Header naming the event (`issue_comment`, `pull_request`, `ping`, ...).
pub const EVENT_HEADER: &str = "x-github-event";
/// Header with the delivery's unique id (kept when GitHub redelivers).
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// Stable CamelCase reason for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "MissingSignature",
            SignatureError::Malformed | SignatureError::Mismatch => "InvalidSignature",
        }
    }
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(body);
    mac
}

/// The header value GitHub sends for `body` signed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, body).finalize().into_bytes()))
}

/// Checks `header` against `body` in constant time (`hmac`'s `verify_slice`, built on `subtle`).
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    mac(secret, body).verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// Replay keys already acted on, the oldest forgotten first once `capacity` is reached
/// (GitHub deliveries carry no timestamp to expire them by).
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl DeliveryLog {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), order: VecDeque::new(), seen: HashSet::new() }
    }

    /// Records every key; false (and nothing recorded) when any was seen before.
    pub fn record(&mut self, keys: &[String]) -> bool {
        if keys.iter().any(|k| self.seen.contains(k)) {
            return false;
        }
        for key in keys {
            if self.order.len() >= self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            self.order.push_back(key.clone());
            self.seen.insert(key.clone());
        }
        true
    }

    /// Forgets `keys`, so a redelivery of a delivery that failed is acted on.
    pub fn forget(&mut self, keys: &[String]) {
        for key in keys {
            if self.seen.remove(key) {
                self.order.retain(|k| k != key);
            }
        }
    }
}

/// A command a comment can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Create the environment.
    Preview,
    /// Redeploy the pull request's latest head.
    Update,
    /// Delete the environment.
    Destroy,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Preview => "/preview",
            Command::Update => "/update",
            Command::Destroy => "/destroy",
        }
    }
}

/// The command a comment body gives: its first non-empty line must start with it
/// (`/preview`, or `/preview please`), so quoting a command further down does nothing.
/// Read as people type it: any case (phones capitalise `/Preview`), in backticks,
/// after leading white space, a byte-order mark or a no-break space, CRLF or LF.
pub fn parse_command(body: &str) -> Option<Command> {
    let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
    let first = body.lines().map(|l| l.trim_matches(blank)).find(|l| !l.is_empty())?;
    let word = first.split(blank).next()?.trim_matches('`');
    match word.to_ascii_lowercase().as_str() {
        "/preview" => Some(Command::Preview),
        "/update" => Some(Command::Update),
        "/destroy" => Some(Command::Destroy),
        _ => None,
    }
}

/// What a delivery asks for, once it is known to concern a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A command comment by `user` (comment `comment_id`).
    Command { command: Command, user: String, comment_id: u64 },
    /// The pull request was closed or merged.
    Closed,
    /// New commits were pushed to the head branch.
    Synchronized,
    /// The polling fallback found the environment of an open or closed pull request.
    Poll,
}

impl Trigger {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Command { command, .. } => command.as_str(),
            Trigger::Closed => "closed",
            Trigger::Synchronized => "synchronize",
            Trigger::Poll => "poll",
        }
    }
}

/// A delivery that concerns one pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// `owner/name` as GitHub spells it.
    pub repository: String,
    pub number: u64,
    pub trigger: Trigger,
}

impl PullRequestEvent {
    /// Replay keys from the signed body: a comment is acted on once, whatever delivery
    /// id a replay carries.
    pub fn replay_keys(&self) -> Vec<String> {
        match &self.trigger {
            Trigger::Command { comment_id, .. } => vec![format!("comment:{}:{comment_id}", self.repository)],
            _ => vec![],
        }
    }
}

/// Why a well-formed delivery is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("ping")]
    Ping,
    #[error("{0} events are not handled")]
    UnsupportedEvent(String),
    #[error("{event} action {action:?} is not handled")]
    UnsupportedAction { event: String, action: String },
    #[error("the comment is on an issue, not a pull request")]
    NotAPullRequest,
    #[error("the comment is not a command")]
    NotACommand,
    #[error("the comment is by a bot")]
    ByABot,
    #[error("the comment's author is a deleted account")]
    NoAuthor,
}

impl Ignored {
    /// Stable CamelCase reason for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Ignored::Ping => "Ping",
            Ignored::UnsupportedEvent(_) => "UnsupportedEvent",
            Ignored::UnsupportedAction { .. } => "UnsupportedAction",
            Ignored::NotAPullRequest => "NotAPullRequest",
            Ignored::NotACommand => "NotACommand",
            Ignored::ByABot => "ByABot",
            Ignored::NoAuthor => "NoAuthor",
        }
    }
}

/// A body that is not the documented payload of its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {event} payload: {message}")]
pub struct PayloadError {
    pub event: String,
    pub message: String,
}

#[derive(Deserialize)]
struct RepositoryPayload {
    full_name: String,
}

#[derive(Deserialize)]
struct UserPayload {
    login: String,
    /// `User`, `Bot` or `Organization`.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl UserPayload {
    /// GitHub Apps (switchyard's own among them) and other bots: `type: Bot`, and
    /// their logins end in `[bot]`.
    fn is_bot(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Deserialize)]
struct IssuePayload {
    number: u64,
    /// Present (an object of URLs) only when the issue is a pull request.
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CommentPayload {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    /// `null` when the author's account was deleted (GitHub shows "ghost").
    #[serde(default)]
    user: Option<UserPayload>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: IssuePayload,
    comment: CommentPayload,
    repository: RepositoryPayload,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    number: u64,
    repository: RepositoryPayload,
}

fn parse<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|e| PayloadError { event: event.to_string(), message: e.to_string() })
}

/// What delivery `event` with `body` asks for. Only fields of GitHub's documented
/// payloads are read; everything else in them is ignored.
pub fn classify(event: &str, body: &[u8]) -> Result<Result<PullRequestEvent, Ignored>, PayloadError> {
    match event {
        "ping" => Ok(Err(Ignored::Ping)),
        "issue_comment" => {
            let p: IssueCommentPayload = parse(event, body)?;
            if p.action != "created" {
                return Ok(Err(Ignored::UnsupportedAction { event: event.into(), action: p.action }));
            }
            if p.issue.pull_request.as_ref().is_none_or(|v| v.is_null()) {
                return Ok(Err(Ignored::NotAPullRequest));
            }
            let Some(command) = p.comment.body.as_deref().and_then(parse_command) else {
                return Ok(Err(Ignored::NotACommand));
            };
            let Some(user) = p.comment.user else { return Ok(Err(Ignored::NoAuthor)) };
            if user.is_bot() {
                return Ok(Err(Ignored::ByABot));
            }
            Ok(Ok(PullRequestEvent {
                repository: p.repository.full_name,
                number: p.issue.number,
                trigger: Trigger::Command { command, user: user.login, comment_id: p.comment.id },
            }))
        }
        "pull_request" => {
            let p: PullRequestPayload = parse(event, body)?;
            let trigger = match p.action.as_str() {
                "closed" => Trigger::Closed,
                "synchronize" => Trigger::Synchronized,
                _ => return Ok(Err(Ignored::UnsupportedAction { event: event.into(), action: p.action })),
            };
            Ok(Ok(PullRequestEvent { repository: p.repository.full_name, number: p.number, trigger }))
        }
        other => Ok(Err(Ignored::UnsupportedEvent(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    #[test]
    fn signature_matches_githubs_documented_example() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(signature(SECRET, b"Hello, World!"), expected);
        assert_eq!(verify_signature(SECRET, b"Hello, World!", Some(expected)), Ok(()));
    }

    #[test]
    fn wrong_missing_or_malformed_signatures_are_refused() {
        let body = b"{}";
        let good = signature(SECRET, body);
        assert_eq!(verify_signature(b"other", body, Some(&good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(SECRET, b"{ }", Some(&good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(SECRET, body, None), Err(SignatureError::Missing));
        for bad in ["sha1=abc", "sha256=zz", "sha256=abcd", &good.replace("sha256=", "")] {
            assert_eq!(verify_signature(SECRET, body, Some(bad)), Err(SignatureError::Malformed), "{bad}");
        }
    }

    #[test]
    fn delivery_log_refuses_repeats_and_forgets_the_oldest_when_full() {
        let mut log = DeliveryLog::new(2);
        let k = |s: &str| vec![s.to_string()];
        assert!(log.record(&k("a")));
        assert!(!log.record(&k("a")));
        assert!(!log.record(&["b".into(), "a".into()]), "any seen key refuses the delivery");
        assert!(log.record(&k("b")) && log.record(&k("c")));
        assert!(log.record(&k("a")), "a was forgotten to make room");
        log.forget(&k("a"));
        assert!(log.record(&k("a")));
    }

    #[test]
    fn commands_are_read_from_the_first_line_only() {
        assert_eq!(parse_command("/preview"), Some(Command::Preview));
        assert_eq!(parse_command("\n  /update please\nthanks"), Some(Command::Update));
        assert_eq!(parse_command("/destroy"), Some(Command::Destroy));
        assert_eq!(parse_command("> /preview\nquoted"), None);
        assert_eq!(parse_command("please /preview"), None);
        assert_eq!(parse_command("/previewing"), None);
        assert_eq!(parse_command(""), None);
    }

    #[test]
    fn commands_are_read_as_people_type_them() {
        for body in [
            "/Preview",
            "/PREVIEW please",
            "`/preview`",
            "```/preview```",
            "\u{feff}/preview",
            "\u{a0}\u{a0}/preview",
            "\r\n  /preview\r\nthanks",
            "/preview\u{a0}now",
        ] {
            assert_eq!(parse_command(body), Some(Command::Preview), "{body:?}");
        }
        assert_eq!(parse_command("/Destroy\r\n"), Some(Command::Destroy));
        // Still only the first word of the first line.
        assert_eq!(parse_command("see `/preview`"), None);
        assert_eq!(parse_command("> `/Preview`"), None);
        assert_eq!(parse_command("`/previews`"), None);
    }

    #[test]
    fn comments_by_bots_and_deleted_accounts_are_ignored_not_refused() {
        // GitHub's recorded payload (octokit/webhooks, see tests/testdata/github/README.md):
        // its commenter is `{"login": "Codertocat", "type": "User", …}`. Variants are
        // derived in memory: on a pull request, a command, another user object.
        let recorded: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/testdata/github/issue_comment.created.payload.json"))
                .unwrap_or_default();
        let with_user = |user: serde_json::Value| {
            let mut body = recorded.clone();
            body["issue"]["pull_request"] =
                json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
            body["comment"]["body"] = json!("/preview");
            if !user.is_null() {
                let mut real = body["comment"]["user"].clone();
                for (k, v) in user.as_object().into_iter().flatten() {
                    real[k] = v.clone();
                }
                body["comment"]["user"] = real;
            } else {
                body["comment"]["user"] = user;
            }
            classify("issue_comment", &serde_json::to_vec(&body).unwrap_or_default())
        };
        assert_eq!(recorded["comment"]["user"]["type"], "User", "the recorded user object has the field we read");
        let bot = with_user(json!({"login": "switchyard[bot]", "type": "Bot"}));
        assert_eq!(bot, Ok(Err(Ignored::ByABot)));
        let named_bot = with_user(json!({"login": "renovate[bot]"}));
        assert_eq!(named_bot, Ok(Err(Ignored::ByABot)));
        assert_eq!(with_user(serde_json::Value::Null), Ok(Err(Ignored::NoAuthor)));
        let person = with_user(json!({"login": "dev", "type": "User"}));
        assert!(matches!(person, Ok(Ok(PullRequestEvent { trigger: Trigger::Command { .. }, .. }))), "{person:?}");
    }

    fn comment(body: &str, on_pr: bool, action: &str) -> Vec<u8> {
        let mut issue = json!({"number": 7});
        if on_pr {
            issue["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/7"});
        }
        json!({"action": action, "issue": issue, "comment": {"id": 99, "body": body, "user": {"login": "dev"}},
               "repository": {"full_name": "o/r"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn comment_commands_on_pull_requests_become_events() {
        let event = classify("issue_comment", &comment("/preview", true, "created")).unwrap().unwrap();
        assert_eq!(event.repository, "o/r");
        assert_eq!(event.number, 7);
        assert_eq!(event.trigger, Trigger::Command { command: Command::Preview, user: "dev".into(), comment_id: 99 });
        assert_eq!(event.replay_keys(), vec!["comment:o/r:99".to_string()]);
    }

    #[test]
    fn other_comments_and_actions_are_ignored_with_a_reason() {
        let ignored = |e: &str, body: Vec<u8>| classify(e, &body).unwrap().unwrap_err();
        assert_eq!(ignored("issue_comment", comment("/preview", false, "created")), Ignored::NotAPullRequest);
        assert_eq!(ignored("issue_comment", comment("looks good", true, "created")), Ignored::NotACommand);
        assert!(matches!(
            ignored("issue_comment", comment("/preview", true, "edited")),
            Ignored::UnsupportedAction { .. }
        ));
        let opened = json!({"action": "opened", "number": 2, "repository": {"full_name": "o/r"}});
        assert!(matches!(ignored("pull_request", opened.to_string().into_bytes()), Ignored::UnsupportedAction { .. }));
        assert_eq!(ignored("ping", b"{}".to_vec()), Ignored::Ping);
        assert_eq!(ignored("push", b"{}".to_vec()), Ignored::UnsupportedEvent("push".into()));
    }

    #[test]
    fn pull_request_closed_and_synchronize_become_events() {
        for (action, trigger) in [("closed", Trigger::Closed), ("synchronize", Trigger::Synchronized)] {
            let body = json!({"action": action, "number": 2, "repository": {"full_name": "o/r"}});
            let event = classify("pull_request", body.to_string().as_bytes()).unwrap().unwrap();
            assert_eq!((event.number, event.trigger), (2, trigger));
        }
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        assert!(classify("issue_comment", b"not json").is_err());
        assert!(classify("pull_request", br#"{"action":"closed"}"#).is_err());
    }
}
