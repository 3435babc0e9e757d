//! Reads `.env`-style files (`env_file:` of a compose service, or a discovery source of
//! format `Env`): `NAME=value` lines, `export NAME=value`, `#` comments, values in
//! single or double quotes. Lines that are not assignments are skipped, as compose
//! skips them.

use super::compose::Variable;

/// The variables of an env file, in file order.
pub fn parse(text: &str) -> Vec<Variable> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                return None;
            }
            let (name, value) = line.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
                return None;
            }
            let value = value.trim();
            let value = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
                _ => value.split(" #").next().unwrap_or_default().trim_end(),
            };
            Some(Variable { name: name.to_string(), value: value.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_quotes_exports_and_comments() {
        let vars =
            parse("# db\nDB_HOST=db\nexport URL=\"http://api:80\" \nQ='a b' # c\nX=1 # note\nnot a line\n=bad\n");
        let pairs: Vec<(&str, &str)> = vars.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
        assert_eq!(pairs, vec![("DB_HOST", "db"), ("URL", "http://api:80"), ("Q", "a b"), ("X", "1")]);
    }
}
