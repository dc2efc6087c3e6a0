//! Limits on what one client can make the service keep: payload size and depth, and the
//! number of unfinished jobs per product (a quota).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::error::CoreError;
use crate::store::Store;
use crate::trigger::Trigger;

/// The limits, all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (the job's request as JSON text), in bytes.
    pub payload_bytes: usize,
    /// Deepest nesting of objects and arrays in a request body (the body itself is level 1).
    pub payload_depth: usize,
    /// Most unfinished jobs (scheduled, running, paused, recurring) one product may have;
    /// `None` for no quota.
    pub pending_per_product: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { payload_bytes: 64 * 1024, payload_depth: 32, pending_per_product: Some(100_000) }
    }
}

/// How long a client refused by the quota is asked to wait.
pub const QUOTA_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Refuses a body nested deeper than `max` levels, or with a NUL character (`\u0000`) in any
/// string or key (PostgreSQL's text and `jsonb` cannot hold one, so no store keeps it); the
/// error names the path, e.g. `triggers[0].name`.
pub fn check_body(body: &Value, max: usize) -> Result<(), CoreError> {
    // Depth-first without recursion: a hostile body cannot exhaust the stack here.
    let mut stack: Vec<(&Value, usize, String)> = vec![(body, 1, String::new())];
    let nul = |path: String| CoreError::InvalidField {
        field: if path.is_empty() { "body".to_owned() } else { path },
        reason: "contains a NUL character (\\u0000), which the job store cannot keep".to_owned(),
    };
    while let Some((v, depth, path)) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return Err(nul(path)),
            Value::Object(_) | Value::Array(_) if depth > max => {
                let field = if path.is_empty() { "body".to_owned() } else { path };
                return Err(CoreError::InvalidField {
                    field,
                    reason: format!("nested deeper than the limit of {max} levels of objects and arrays"),
                });
            }
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| k.contains('\0')) {
                    return Err(nul(join(&path, k)));
                }
                stack.extend(m.iter().filter(|(_, c)| worth(c)).map(|(k, c)| (c, depth + 1, join(&path, k))))
            }
            Value::Array(a) => stack.extend(
                a.iter().enumerate().filter(|(_, c)| worth(c)).map(|(i, c)| (c, depth + 1, format!("{path}[{i}]"))),
            ),
            _ => {}
        }
    }
    Ok(())
}

/// Whether a value needs a look of its own: containers, and strings holding a NUL.
fn worth(v: &Value) -> bool {
    match v {
        Value::Object(_) | Value::Array(_) => true,
        Value::String(s) => s.contains('\0'),
        _ => false,
    }
}

fn join(path: &str, key: &str) -> String {
    let key: String = key.chars().take(64).collect();
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Refuses a payload larger than `max` bytes, counting the largest `data` of the triggers
/// too: a trigger's data is merged into the request its fires receive.
pub fn check_payload_size(payload: &str, triggers: &[Trigger], max: usize) -> Result<(), CoreError> {
    let data = triggers
        .iter()
        .filter_map(|t| t.data.as_ref())
        .map(|d| serde_json::to_string(d).map_or(0, |s| s.len()))
        .max()
        .unwrap_or(0);
    let bytes = payload.len() + data;
    if bytes > max {
        return Err(CoreError::PayloadTooLarge { bytes, limit: max });
    }
    Ok(())
}

/// The per-product quota of unfinished jobs.
///
/// Counting a product's jobs on every create would cost a scan each time, so each product's
/// count is kept for a second and every create admitted since is added to it (a reservation,
/// given back when the create makes nothing new); when that estimate reaches the quota the
/// store is asked again (at most every 100 ms, one request at a time) before a create is
/// refused. With several nodes the quota can be overshot by the creates the others admit
/// within that second: it protects the store from a runaway client, it is not an exact bound.
pub(crate) struct Quota {
    limit: Option<u64>,
    counts: Mutex<HashMap<String, Count>>,
}

#[derive(Clone, Copy)]
struct Count {
    counted: u64,
    at: Instant,
    /// Creates admitted since the count.
    admitted: u64,
    /// A request is counting now; the others go by the estimate.
    counting: bool,
}

impl Count {
    /// Takes `n` places, or refuses when the estimate would pass the quota.
    fn reserve(&mut self, product: &str, limit: u64, n: u64) -> Result<(), CoreError> {
        let pending = self.counted + self.admitted;
        if pending.saturating_add(n) > limit {
            return Err(CoreError::QuotaReached {
                product: product.chars().take(64).collect(),
                pending,
                limit,
                retry_after: QUOTA_RETRY_AFTER,
            });
        }
        self.admitted += n;
        Ok(())
    }
}

const STALE: Duration = Duration::from_secs(1);
const RECHECK: Duration = Duration::from_millis(100);

impl Quota {
    pub(crate) fn new(limit: Option<u64>) -> Quota {
        Quota { limit, counts: Mutex::new(HashMap::new()) }
    }

    /// Reserves a place for one more job of `product`, or refuses; a reservation whose create
    /// made nothing new is given back with [`Quota::release`].
    pub(crate) fn admit(&self, store: &dyn Store, product: &str) -> Result<(), CoreError> {
        self.admit_many(store, product, 1)
    }

    /// Reserves places for `n` more jobs of `product` (all or none).
    pub(crate) fn admit_many(&self, store: &dyn Store, product: &str, n: u64) -> Result<(), CoreError> {
        let Some(limit) = self.limit else { return Ok(()) };
        {
            let mut counts = self.counts.lock();
            if let Some(c) = counts.get_mut(product) {
                let age = c.at.elapsed();
                // An estimate that would refuse these `n` is counted again first (at most every RECHECK).
                let due = !c.counting && (age >= STALE || (c.counted + c.admitted + n > limit && age >= RECHECK));
                if !due {
                    return c.reserve(product, limit, n);
                }
                c.counting = true;
            }
        }
        // Counted without the lock held: creates of other products do not wait for it.
        let counted = store.jobs_pending(product);
        let mut counts = self.counts.lock();
        if let Some(c) = counts.get_mut(product) {
            c.counting = false;
        }
        let fresh = Count { counted: counted?, at: Instant::now(), admitted: 0, counting: false };
        let c = counts.entry(product.to_owned()).or_insert(fresh);
        *c = fresh;
        c.reserve(product, limit, n)
    }

    /// Gives back a reservation whose create made no new job (it failed, or found the job an
    /// earlier request with the same key made).
    pub(crate) fn release(&self, product: &str) {
        self.release_many(product, 1);
    }

    /// Gives back `n` reservations.
    pub(crate) fn release_many(&self, product: &str, n: u64) {
        if self.limit.is_some() {
            if let Some(c) = self.counts.lock().get_mut(product) {
                c.admitted = c.admitted.saturating_sub(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_the_body_as_level_one_and_names_the_path() {
        assert!(check_body(&json!({"a": 1}), 1).is_ok());
        assert!(check_body(&json!({"a": {"b": [1, {"c": 2}]}}), 4).is_ok());
        let e = check_body(&json!({"a": {"b": [1, {"c": 2}]}}), 3).unwrap_err();
        match e {
            CoreError::InvalidField { field, .. } => assert_eq!(field, "a.b[1]"),
            other => panic!("unexpected {other:?}"),
        }
        let e = check_body(&json!([[1]]), 1).unwrap_err();
        assert!(matches!(e, CoreError::InvalidField { field, .. } if field == "[0]"));
    }

    #[test]
    fn a_nul_anywhere_is_refused_naming_where() {
        let field = |v: Value| match check_body(&v, 32) {
            Err(CoreError::InvalidField { field, reason }) => {
                assert!(reason.contains("NUL"), "{reason}");
                field
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(field(json!({"triggers": [{"cron": "* * * * *", "name": "n\u{0}"}]})), "triggers[0].name");
        assert_eq!(field(json!({"a\u{0}b": 1})), "a\u{0}b");
        assert_eq!(field(json!("\u{0}")), "body");
        assert!(check_body(&json!({"a": ["fine", {"b": "also fine"}]}), 32).is_ok());
    }

    #[test]
    fn a_very_deep_body_is_refused_without_recursion() {
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert!(check_body(&v, 32).is_err());
        // serde_json's own drop is recursive; take it apart iteratively.
        let mut cur = v;
        while let Value::Array(mut a) = cur {
            cur = a.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn payload_size_is_measured_in_bytes() {
        assert!(check_payload_size("{\"a\":\"é\"}", &[], 10).is_ok());
        assert!(matches!(
            check_payload_size("{\"a\":\"éé\"}", &[], 10),
            Err(CoreError::PayloadTooLarge { bytes: 12, limit: 10 })
        ));
        // The largest trigger data counts with the payload.
        let mut t = Trigger::new(crate::trigger::ScheduleSpec::Once { when: crate::Ts(0) });
        t.data = serde_json::from_str("{\"b\":\"1234\"}").ok();
        assert!(matches!(
            check_payload_size("{}", &[t.clone(), Trigger { data: None, ..t }], 13),
            Err(CoreError::PayloadTooLarge { bytes: 14, limit: 13 })
        ));
    }
}
