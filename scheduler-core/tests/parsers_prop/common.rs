//! Configuration, shared constants and helpers, and the strategies every group of properties
//! draws on: arbitrary JSON values and a server's "now".

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use scheduler_core::{CoreError, Ts};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Configuration and shared helpers
// ---------------------------------------------------------------------------------------------

/// The earliest instant the API accepts (1970-01-01T00:00:00Z), in seconds.
pub(crate) const MIN_SECS: i64 = 0;
/// The latest (9999-12-31T23:59:59Z), in seconds.
pub(crate) const MAX_SECS: i64 = 253_402_300_799;
/// The longest interval accepted (ten years, `MAX_INTERVAL` in `trigger/interval.rs`).
pub(crate) const MAX_INTERVAL_SECS: u64 = 3_650 * 86_400;
/// A fixed "now" (2026-09-21).
pub(crate) const NOW: Ts = Ts(1_790_000_000_000_000);
pub(crate) const NANOS: u128 = 1_000_000_000;

/// Settings of an entry of `triggers` that, at the top level of a create body, are payload
/// keys like any other (see `top_level_trigger_keys_are_payload`).
pub(crate) const ENTRY_ONLY_KEYS: [&str; 3] = ["enabled", "name", "data"];

pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5c4e_d01e_2026),
        max_shrink_iters: 4_096,
        max_shrink_time: 20_000,
        ..ProptestConfig::default()
    }
}

/// The field an error names; anything but `InvalidField` fails the property.
pub(crate) fn field_of(e: CoreError) -> Result<String, TestCaseError> {
    match e {
        CoreError::InvalidField { field, .. } => Ok(field),
        other => Err(TestCaseError::fail(format!("expected CoreError::InvalidField, got {other:?}"))),
    }
}

/// The top-level key a field name is about: `triggers[1].cron` -> `triggers`, `backoff.type`
/// -> `backoff`.
pub(crate) fn root_of(field: &str) -> &str {
    field.split(['.', '[']).next().unwrap_or(field)
}

pub(crate) fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

pub(crate) fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn secs_ts(secs: i64) -> Ts {
    Ts(secs * 1_000_000)
}

// ---------------------------------------------------------------------------------------------
// Strategies: JSON values
// ---------------------------------------------------------------------------------------------

/// Numbers as JSON can hold them: any i64 / u64 / finite f64, and number text of any size
/// (huge, tiny, fractional, with exponents) read the way the web layer reads a body.
pub(crate) fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null, as serde_json does
        (-1e12f64..1e12).prop_map(Value::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e-300,
            5e-324,
            0.5,
            0.999_999_999_9,
            1.0,
            86_400.5,
            f64::MAX,
            -f64::MAX,
            u64::MAX as f64,
            i64::MAX as f64,
            1.8e19,
            3.2e8,
        ])
        .prop_map(Value::from),
        "-?[0-9]{1,40}(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?"
            .prop_map(|s| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)),
    ]
}

/// Text of any kind; a NUL character (`\u0000`) only now and then (one in about 40 strings),
/// so that bodies holding several strings are not all refused for it.
pub(crate) fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => any::<String>().prop_map(|s| s.replace('\0', "")),
        10 => "\\PC{0,24}",
        10 => "[a-zA-Z0-9 :./+\\-]{0,24}",
        5 => Just(String::new()),
        1 => "[a-z]{0,3}\u{0}[a-z]{0,3}",
    ]
}

pub(crate) fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, nested (arrays and objects with unicode keys) up to a few levels.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Strategies: a server's "now"
// ---------------------------------------------------------------------------------------------

/// A "now" a server could see (1970 to 2200).
pub(crate) fn server_now() -> impl Strategy<Value = Ts> {
    prop_oneof![Just(NOW), (0i64..7_258_118_400_000_000).prop_map(Ts)]
}
