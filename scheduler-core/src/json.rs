//! Reading a request body as JSON, strictly: a key given twice in one object is an error
//! naming it. `serde_json` keeps the last of two equal keys without a word, so two readers of
//! one body (a proxy, a validator, this service) could each see a different value: a known way
//! around validation. Every entry point reads bodies through [`parse`].

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all (serde_json's message, with line and column).
    #[error("is not valid JSON: {0}")]
    Syntax(String),
    /// An object has the same key twice; `path` names it (`vmId`, `triggers[0].name`).
    #[error("the key `{path}` appears more than once in one object")]
    DuplicateKey {
        /// Where, as `a.b[2].c`.
        path: String,
    },
}

/// Parses `bytes` as one JSON value, refusing duplicate keys in any object.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict { path: &Path::Root, duplicate: &duplicate }.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    match (parsed, duplicate.into_inner()) {
        (_, Some(path)) => Err(JsonError::DuplicateKey { path }),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(JsonError::Syntax(e.to_string())),
    }
}

/// Where a value sits in the body, as a chain of borrowed steps (built only on the way down,
/// rendered only for an error).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => write!(f, "{}", k.chars().take(64).collect::<String>()),
            Path::Key(parent, k) => write!(f, "{parent}.{}", k.chars().take(64).collect::<String>()),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// A value read strictly at `path`; the first duplicate key found is left in `duplicate`.
struct Strict<'a> {
    path: &'a Path<'a>,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let here = Path::Index(self.path, out.len());
            match seq.next_element_seed(Strict { path: &here, duplicate: self.duplicate })? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let here = Path::Key(self.path, &key);
            if out.contains_key(&key) {
                let path = here.to_string();
                *self.duplicate.borrow_mut() = Some(path.clone());
                return Err(de::Error::custom(format!("duplicate key `{path}`")));
            }
            let value = map.next_value_seed(Strict { path: &here, duplicate: self.duplicate })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{parse, JsonError};

    #[test]
    fn a_body_reads_as_serde_json_reads_it() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": "\u00e9"}"#;
        assert_eq!(parse(text.as_bytes()).unwrap(), serde_json::from_str::<serde_json::Value>(text).unwrap());
    }

    #[test]
    fn a_duplicate_key_is_refused_naming_where_it_is() {
        let dup = |text: &str| match parse(text.as_bytes()) {
            Err(JsonError::DuplicateKey { path }) => path,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(dup(r#"{"vmId": "a", "vmId": "b"}"#), "vmId");
        assert_eq!(dup(r#"{"triggers": [{"cron": "* * * * *"}, {"name": "x", "name": "y"}]}"#), "triggers[1].name");
        assert_eq!(dup(r#"{"a": {"b": [[{"c": 1, "c": 1}]]}}"#), "a.b[0][0].c");
        // Equal keys in different objects are fine.
        assert_eq!(parse(br#"{"a": {"x": 1}, "b": {"x": 1}}"#).unwrap(), json!({"a": {"x": 1}, "b": {"x": 1}}));
    }

    #[test]
    fn bad_json_and_trailing_text_are_syntax_errors() {
        assert!(matches!(parse(b"{\"a\": }"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"{} {}"), Err(JsonError::Syntax(_))));
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(parse(deep.as_bytes()), Err(JsonError::Syntax(_))), "the recursion limit holds");
    }
}
