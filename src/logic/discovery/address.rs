//! Finds the hosts a process would connect to in the strings a service or workload
//! carries: environment variables, command words, configuration text.
//!
//! Precision comes first: a string equal to a service name is *not* an address by
//! itself (`OTEL_COLLECTOR_NAME=otel-collector`, `--name api`, `SERVICE=web` name
//! things without using them). A host counts only when the string has the shape of
//! an address the process would use:
//!
//! 1. **URL**: `scheme://[user[:pass]@]host[:port][,host[:port]…][/…]`, any scheme,
//!    anywhere in the string (`JAVA_OPTS=-Durl=jdbc:postgresql://db:5432/x` too).
//! 2. **host:port** with a numeric port (1–65535), optionally after `user@` and
//!    before `/path`: `redis:6379`, `kafka:9092,zk:2181`, `db:5432/app`.
//! 3. **Host-typed variables**: when the variable's name ends (before any numeric
//!    suffix) in a word ending in `HOST`, `HOSTS`, `HOSTNAME`, `ADDR`, `ADDRESS`,
//!    `URL`, `URI`, `DSN`, `SERVER`, `SERVERS`, `ENDPOINT`, `BROKER`, `BROKERS`
//!    (`DB_HOST`, `REDISHOST`, `KAFKA_BOOTSTRAP_SERVERS`, `SPRING_DATASOURCE_URL`),
//!    its value may also be bare hosts, comma- or space-separated (`DB_HOST=db`).
//!    `SERVER_NAME`, `HOST_PORT` or plain `HOSTNAME` (the container's own name) are
//!    not host-typed: the host word is not last, or names the container itself.
//! 4. **Host options** in commands: `-h X`, `--host X`, `--host=X`, and long options
//!    whose name is host-typed by rule 3 (`--db-host X`, `--redis-url=…`).
//!
//! Hosts are lowercased; IP addresses, `localhost` and names with no letter are never
//! hosts of a service. Compose interpolation is applied first: `${VAR:-default}` and
//! `${VAR-default}` become the default, other `${VAR}`/`$VAR` become nothing (their
//! value is unknown offline), so `DB_HOST=${DB_HOST:-db}` names `db`. Which hosts are
//! services is decided by the caller, against the names the repositories define.

use std::collections::BTreeSet;

/// Endings of a variable- or option-name word that say "this holds an address".
const HOST_WORDS: [&str; 15] = [
    "HOST", "HOSTS", "HOSTNAME", "ADDR", "ADDRESS", "URL", "URLS", "URI", "DSN", "SERVER", "SERVERS", "ENDPOINT",
    "BROKER", "BROKERS", "ADDRS",
];

/// Longest string examined; longer values are cut (a value is not a document).
const MAX_VALUE: usize = 64 * 1024;

/// Whether a variable (or long option) named `name` holds an address (rule 3).
pub fn host_typed(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper == "HOSTNAME" {
        return false;
    }
    let words: Vec<&str> = upper.split(['_', '-', '.']).filter(|w| !w.is_empty()).collect();
    let last = words.iter().rev().find(|w| !w.chars().all(|c| c.is_ascii_digit()));
    last.is_some_and(|w| HOST_WORDS.iter().any(|h| w.ends_with(h)))
}

/// Hosts in the value of the variable `name` (rules 1–3).
pub fn in_variable(name: &str, value: &str) -> BTreeSet<String> {
    let value = interpolate(value);
    let mut hosts = in_text(&value);
    if host_typed(name) {
        hosts.extend(value.split(|c: char| c.is_whitespace() || ",;".contains(c)).filter_map(bare_host));
    }
    hosts
}

/// Hosts in free text: URLs and host:port only (rules 1–2).
pub fn in_text(text: &str) -> BTreeSet<String> {
    let text = cut(text);
    let mut hosts = BTreeSet::new();
    for token in text.split(|c: char| c.is_whitespace() || ",;'\"()[]{}<>|`=\\".contains(c)) {
        if token.contains("://") {
            hosts.extend(url_hosts(token));
        } else if let Some(host) = host_port(token) {
            hosts.insert(host);
        }
    }
    // URLs with several hosts (`mongodb://a:1,b:2/db`) were split at the comma above;
    // their later hosts are caught by the host:port rule.
    hosts
}

/// Hosts in command words (rules 1, 2 and 4). A shell string (`sh -c "…"`) is split
/// into words too.
pub fn in_command(words: &[String]) -> BTreeSet<String> {
    let words: Vec<String> = words
        .iter()
        .flat_map(|w| {
            interpolate(w).split_whitespace().map(|s| s.trim_matches(['\'', '"']).to_string()).collect::<Vec<_>>()
        })
        .collect();
    let mut hosts = BTreeSet::new();
    for (i, word) in words.iter().enumerate() {
        hosts.extend(in_text(word));
        let (option, inline) = match word.split_once('=') {
            Some((o, v)) if o.starts_with('-') => (o, Some(v)),
            _ => (word.as_str(), None),
        };
        let host_option =
            option == "-h" || option.strip_prefix("--").is_some_and(|long| long == "host" || host_typed(long));
        if !host_option {
            continue;
        }
        let value = inline.or_else(|| words.get(i + 1).map(String::as_str).filter(|v| !v.starts_with('-')));
        if let Some(value) = value {
            hosts.extend(value.split(',').filter_map(bare_host));
        }
    }
    hosts
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Compose-style interpolation with unknown variables: defaults kept, the rest dropped.
pub fn interpolate(value: &str) -> String {
    let value = cut(value);
    if !value.contains('$') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                rest = "";
                break;
            };
            let inner = &body[..close];
            let default = inner.split_once(":-").or_else(|| inner.split_once('-')).map(|(_, d)| d);
            out.push_str(default.unwrap_or_default());
            rest = &body[close + 1..];
        } else {
            let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    out
}

/// The hosts of a token containing `scheme://`.
fn url_hosts(token: &str) -> Vec<String> {
    let Some((_, rest)) = token.split_once("://") else {
        return Vec::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts.split(',').filter_map(|h| valid_host(h.split(':').next().unwrap_or_default())).collect()
}

/// `[user@]host:port[/path]` with a numeric port.
fn host_port(token: &str) -> Option<String> {
    let token = token.split('/').next().unwrap_or_default();
    let token = token.rsplit_once('@').map_or(token, |(_, h)| h);
    let (host, port) = token.rsplit_once(':')?;
    let port: u32 = port.parse().ok()?;
    if !(1..=65535).contains(&port) {
        return None;
    }
    valid_host(host)
}

/// A bare host, `host:port`, or URL: the value of a host-typed variable or option.
fn bare_host(item: &str) -> Option<String> {
    let item = item.trim_matches(['\'', '"', '[', ']']);
    if item.contains("://") {
        return url_hosts(item).into_iter().next();
    }
    let host = item.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    valid_host(host.split(':').next().unwrap_or_default())
}

/// A DNS name with at least one letter, lowercased; not `localhost`. Underscores are
/// allowed because compose service names may hold them and Docker resolves them.
fn valid_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 || host == "localhost" || !host.contains(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(hosts: &[&str]) -> BTreeSet<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn urls_of_any_scheme_with_userinfo_ports_and_several_hosts() {
        assert_eq!(in_variable("DATABASE_URL", "postgres://u:p@db:5432/app"), set(&["db"]));
        assert_eq!(in_variable("X", "jdbc:mysql://Mysql.data/x?ssl=false"), set(&["mysql.data"]));
        assert_eq!(in_variable("MONGO", "mongodb://m1:27017,m2:27017/db?replicaSet=rs"), set(&["m1", "m2"]));
        assert_eq!(in_variable("OPTS", "-Dspring.kafka.url=http://kafka:9092 -Xmx1g"), set(&["kafka"]));
        assert_eq!(in_variable("ES", "[\"http://elasticsearch:9200\"]"), set(&["elasticsearch"]));
    }

    #[test]
    fn host_port_needs_a_numeric_port() {
        assert_eq!(in_variable("CACHE", "redis:6379"), set(&["redis"]));
        assert_eq!(in_variable("PEERS", "kafka:9092,zk:2181"), set(&["kafka", "zk"]));
        assert!(in_variable("APP", "app:app").is_empty());
        assert!(in_variable("WHEN", "12:30").is_empty());
        assert!(in_variable("BIND", "0.0.0.0:8080").is_empty());
        assert!(in_variable("LOCAL", "localhost:3000").is_empty());
    }

    #[test]
    fn bare_names_count_only_in_host_typed_variables() {
        assert_eq!(in_variable("DB_HOST", "db"), set(&["db"]));
        assert_eq!(in_variable("REDISHOST", "cache"), set(&["cache"]));
        assert_eq!(in_variable("KAFKA_BOOTSTRAP_SERVERS", "k1, k2"), set(&["k1", "k2"]));
        assert_eq!(in_variable("ES_HOSTS_1", "search"), set(&["search"]));
        assert!(in_variable("OTEL_COLLECTOR_NAME", "otel-collector").is_empty());
        assert!(in_variable("SERVER_NAME", "web").is_empty());
        assert!(in_variable("HOSTNAME", "web").is_empty());
        assert!(in_variable("SERVICE", "db").is_empty());
        assert!(in_variable("DB_HOST", "10.0.0.5").is_empty());
    }

    #[test]
    fn interpolation_keeps_defaults_and_drops_unknowns() {
        assert_eq!(in_variable("DB_HOST", "${DB_HOST:-db}"), set(&["db"]));
        assert_eq!(in_variable("DB_HOST", "${DB_HOST-pg}"), set(&["pg"]));
        assert_eq!(in_variable("URL", "http://${USER}:${PASS}@api:80"), set(&["api"]));
        assert!(in_variable("DB_HOST", "${DB_HOST}").is_empty());
        assert_eq!(interpolate("a$$b $X-${Y:?e}c"), "a$b -c");
    }

    #[test]
    fn commands_yield_urls_host_ports_and_host_options() {
        assert_eq!(in_command(&words("pg_isready -h db -p 5432")), set(&["db"]));
        assert_eq!(in_command(&words("redis-cli --host=cache ping")), set(&["cache"]));
        assert_eq!(in_command(&words("app --db-host pg --name api")), set(&["pg"]));
        assert_eq!(in_command(&["sh".into(), "-c".into(), "wait-for-it.sh db:5432 && run".into()]), set(&["db"]));
        assert_eq!(in_command(&words("dockerize -wait tcp://mq:5672")), set(&["mq"]));
        assert!(in_command(&words("gunicorn app:app --bind 0.0.0.0:8000 -h")).is_empty());
        assert!(in_command(&words("nginx -g daemon off; --name web")).is_empty());
    }

    #[test]
    fn huge_values_are_cut_not_scanned_whole() {
        let long = format!("{}redis:6379", "x".repeat(MAX_VALUE));
        assert!(in_text(&long).is_empty());
    }
}
