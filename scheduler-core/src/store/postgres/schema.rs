//! The tables as Diesel sees them. Kept in step with `migrations/` by a test that compares
//! these columns with the migrated database's catalogue.

diesel::table! {
    jobs (id) {
        id -> Uuid,
        product -> Text,
        job_group -> Text,
        schedule -> Jsonb,
        when_at -> Timestamptz,
        payload -> Jsonb,
        paused -> Bool,
        next_due -> Nullable<Timestamptz>,
        sort_due -> Timestamptz,
        attempt -> Int4,
        running_run -> Nullable<Uuid>,
        final_status -> Nullable<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    runs (id) {
        seq -> Int8,
        id -> Uuid,
        job_id -> Uuid,
        product -> Text,
        job_group -> Text,
        attempt -> Int4,
        scheduled_for -> Timestamptz,
        claimed_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        node -> Text,
        outcome -> Text,
        error -> Nullable<Text>,
        output -> Nullable<Jsonb>,
        listener_error -> Nullable<Text>,
        trace_id -> Text,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        host -> Text,
        started_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
        groups -> Array<Text>,
        stopped_at -> Nullable<Timestamptz>,
    }
}

/// Every table and its columns (name and SQL type as `information_schema` spells the type),
/// for the drift check.
pub const TABLES: &[(&str, &[(&str, &str)])] = &[
    (
        "jobs",
        &[
            ("id", "uuid"),
            ("product", "text"),
            ("job_group", "text"),
            ("schedule", "jsonb"),
            ("when_at", "timestamp with time zone"),
            ("payload", "jsonb"),
            ("paused", "boolean"),
            ("next_due", "timestamp with time zone"),
            ("sort_due", "timestamp with time zone"),
            ("attempt", "integer"),
            ("running_run", "uuid"),
            ("final_status", "text"),
            ("version", "bigint"),
            ("created_at", "timestamp with time zone"),
            ("updated_at", "timestamp with time zone"),
        ],
    ),
    (
        "runs",
        &[
            ("seq", "bigint"),
            ("id", "uuid"),
            ("job_id", "uuid"),
            ("product", "text"),
            ("job_group", "text"),
            ("attempt", "integer"),
            ("scheduled_for", "timestamp with time zone"),
            ("claimed_at", "timestamp with time zone"),
            ("started_at", "timestamp with time zone"),
            ("finished_at", "timestamp with time zone"),
            ("node", "text"),
            ("outcome", "text"),
            ("error", "text"),
            ("output", "jsonb"),
            ("listener_error", "text"),
            ("trace_id", "text"),
        ],
    ),
    (
        "nodes",
        &[
            ("id", "text"),
            ("host", "text"),
            ("started_at", "timestamp with time zone"),
            ("heartbeat_at", "timestamp with time zone"),
            ("groups", "ARRAY"),
            ("stopped_at", "timestamp with time zone"),
        ],
    ),
];
