//! The schedules file: TOML, one `[[job]]` table per job that must exist.
//!
//! ```toml
//! [[job]]
//! key = "nightly-backup-79bf"    # required: names the job across reloads and nodes
//! product = "vps4"
//! group = "backups"
//! enabled = true                 # default true; false keeps the job, paused
//! cron = "0 0 2 * * *"           # any schedule and policy key of a POST body
//! timezone = "Europe/Prague"
//! payload = { vmId = "79bfd10c-1529-42de-bd68-1a6e084ee13d" }
//! ```

use serde_json::{Map, Value};

use crate::request::SERVICE_KEYS;

/// One declared job, as a create body.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// Its name in the file (unique in the file).
    pub key: String,
    pub product: String,
    /// Its job group.
    pub group: String,
    /// The POST body it stands for: schedule and policy keys, payload keys, `isPaused`.
    pub body: Value,
}

/// What is wrong with a schedules file, naming the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct FileError {
    /// `job[2].cron`, or a line and column for TOML syntax.
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

/// The keys a `[[job]]` table may hold besides schedule and policy keys.
const OWN_KEYS: [&str; 5] = ["key", "product", "group", "enabled", "payload"];

/// Body keys a declaration may not use (the file says them its own way, or they make no sense
/// for a job that must exist).
const REFUSED: [(&str, &str); 3] = [
    ("isPaused", "use `enabled = false`"),
    ("id", "the job is named by `key`"),
    ("now", "a declared job runs on its schedule; use the run route to run it now"),
];

/// The most jobs one file declares.
pub const MAX_DECLARED: usize = 10_000;

fn err(place: impl Into<String>, reason: impl Into<String>) -> FileError {
    FileError { place: place.into(), reason: reason.into() }
}

/// Parses a schedules file.
pub fn parse(text: &str) -> Result<Vec<Declared>, FileError> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let place = e.span().map_or_else(|| "file".to_owned(), |s| line_col(text, s.start));
        err(place, e.message().to_owned())
    })?;
    if let Some(k) = doc.keys().find(|k| *k != "job") {
        return Err(err(k.clone(), "is not a top-level key of a schedules file (declare jobs as [[job]] tables)"));
    }
    let jobs = match doc.get("job") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err(err("job", "must be an array of tables: write each job as [[job]]")),
    };
    if jobs.len() > MAX_DECLARED {
        return Err(err("job", format!("declares {} jobs; at most {MAX_DECLARED}", jobs.len())));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let at = |k: &str| format!("job[{i}].{k}");
        let toml::Value::Table(t) = job else { return Err(err(format!("job[{i}]"), "must be a table")) };
        let text_key = |k: &str| -> Result<String, FileError> {
            match t.get(k) {
                Some(toml::Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(s.clone()),
                Some(_) => Err(err(at(k), "must be a non-empty string of at most 200 characters")),
                None => Err(err(at(k), "is required")),
            }
        };
        let key = text_key("key")?;
        if key.chars().any(char::is_control) {
            return Err(err(at("key"), "must not contain control characters"));
        }
        let (product, group) = (text_key("product")?, text_key("group")?);
        if !seen.insert(key.clone()) {
            return Err(err(at("key"), format!("`{key}` is declared twice; each job needs its own key")));
        }
        let enabled = match t.get("enabled") {
            None => true,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(err(at("enabled"), "must be true or false")),
        };
        let mut body = Map::new();
        for (k, v) in t {
            if OWN_KEYS.contains(&k.as_str()) {
                continue;
            }
            if let Some((_, why)) = REFUSED.iter().find(|(r, _)| r == k) {
                return Err(err(at(k), format!("is not used in a schedules file: {why}")));
            }
            if !SERVICE_KEYS.contains(&k.as_str()) {
                return Err(err(
                    at(k),
                    "is not a schedule or policy key; the job's request goes in `payload = { ... }`".to_owned(),
                ));
            }
            body.insert(k.clone(), json_of(v));
        }
        match t.get("payload") {
            None => {}
            Some(toml::Value::Table(p)) => {
                for (k, v) in p {
                    if SERVICE_KEYS.contains(&k.as_str()) {
                        return Err(err(format!("job[{i}].payload.{k}"), "is a schedule key, not a payload key"));
                    }
                    body.insert(k.clone(), json_of(v));
                }
            }
            Some(_) => return Err(err(at("payload"), "must be a table, e.g. payload = { vmId = \"...\" }")),
        }
        body.insert("isPaused".into(), Value::Bool(!enabled));
        out.push(Declared { key, product, group, body: Value::Object(body) });
    }
    Ok(out)
}

/// TOML to JSON; date-times become their RFC 3339 text (a local one, without an offset, is
/// then refused by the instant parser, naming the field).
fn json_of(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(json_of).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
    }
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_declaration_becomes_a_create_body() {
        let d = parse(
            r#"
            [[job]]
            key = "nightly"
            product = "vps4"
            group = "backups"
            cron = "0 0 2 * * *"
            timezone = "Europe/Prague"
            attempts = 3
            payload = { vmId = "79bfd10c-1529-42de-bd68-1a6e084ee13d" }

            [[job]]
            key = "hourly"
            product = "vps4"
            group = "backups"
            enabled = false
            interval = "1h"
            when = 2027-01-01T00:00:00Z
            "#,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].body,
            json!({"cron": "0 0 2 * * *", "timezone": "Europe/Prague", "attempts": 3,
                   "vmId": "79bfd10c-1529-42de-bd68-1a6e084ee13d", "isPaused": false})
        );
        assert_eq!(d[1].body["isPaused"], true);
        assert_eq!(d[1].body["when"], "2027-01-01T00:00:00Z");
    }

    #[test]
    fn mistakes_name_their_place() {
        let place = |text: &str| parse(text).unwrap_err().place;
        assert_eq!(place("[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\"\nvmId = \"x\""), "job[0].vmId");
        assert_eq!(place("[[job]]\nproduct = \"p\"\ngroup = \"g\""), "job[0].key");
        assert_eq!(place("[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\"\nisPaused = true"), "job[0].isPaused");
        assert_eq!(place("[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\"\nenabled = \"no\""), "job[0].enabled");
        assert_eq!(
            place("[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\"\n[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\""),
            "job[1].key"
        );
        assert_eq!(
            place("[[job]]\nkey = \"a\"\nproduct = \"p\"\ngroup = \"g\"\npayload = { cron = \"x\" }"),
            "job[0].payload.cron"
        );
        assert_eq!(place("jobs = 1"), "jobs");
        assert_eq!(place("[[job]]\nkey = = \"a\""), "line 2, column 7");
    }
}
