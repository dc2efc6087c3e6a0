//! The store's SQL. Every statement that decides who runs what is one statement, so its
//! guarantees come from PostgreSQL's row locks and snapshot, not from timing.

/// Columns of a job as [`super::rows::JobRow`] reads them.
pub const JOB_COLUMNS: &str = "j.id, j.product, j.job_group, j.schedule::text AS schedule, j.when_at, \
     j.payload::text AS payload, j.paused, j.next_due, j.sort_due, j.running_run, j.final_status, \
     j.version, j.created_at, j.updated_at";

/// Columns of a run as [`super::rows::RunRow`] reads them.
pub const RUN_COLUMNS: &str = "r.id, r.job_id, r.product, r.job_group, r.attempt, r.scheduled_for, \
     r.started_at, r.finished_at, r.node, r.outcome, r.error, r.output::text AS output, r.listener_error, r.trace_id";

/// Inserts jobs from parallel arrays, returning nothing (the bulk path).
pub const INSERT_JOBS: &str = "
    INSERT INTO jobs AS j (id, product, job_group, schedule, when_at, payload, paused, next_due, sort_due, created_at, updated_at)
    SELECT t.id, t.product, t.job_group, t.schedule::jsonb, t.when_at, t.payload::jsonb, t.paused, t.when_at, t.when_at, now(), now()
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bool[])
         AS t(id, product, job_group, schedule, when_at, payload, paused)";

/// Inserts jobs from parallel arrays and returns them (concurrent creates, batched).
pub fn insert_jobs_returning() -> String {
    format!("{INSERT_JOBS} RETURNING {JOB_COLUMNS}")
}

pub fn get_job() -> String {
    format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3")
}

pub fn list_jobs() -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs j
         WHERE j.product = $1 AND j.job_group = $2 AND j.final_status IS NULL AND (j.sort_due, j.id) > ($3, $4)
         ORDER BY j.sort_due, j.id
         LIMIT $5"
    )
}

pub fn reschedule_job() -> String {
    format!(
        "UPDATE jobs j
         SET when_at = $4, schedule = $5::jsonb, next_due = $4,
             sort_due = CASE WHEN j.running_run IS NULL THEN $4 ELSE j.sort_due END,
             version = j.version + 1, updated_at = now()
         WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3 AND j.final_status IS NULL
         RETURNING {JOB_COLUMNS}"
    )
}

pub const DELETE_JOB: &str = "
    DELETE FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3 AND j.final_status IS NULL
    RETURNING j.id";

/// Whether a job exists in a group, and its final status.
pub const JOB_STATE: &str = "
    SELECT j.final_status FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3";

pub fn job_runs() -> String {
    format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.job_id = $1 ORDER BY r.seq DESC LIMIT $2")
}

/// Claims up to $1 due jobs of the groups in $2 for node $3: one statement locks them (skipping
/// rows another node is claiming), marks each running with a new run id, and inserts the runs.
pub const CLAIM_DUE: &str = "
    WITH due AS (
        SELECT j.id, j.next_due
        FROM jobs j
        WHERE j.next_due <= now() AND j.next_due IS NOT NULL AND j.running_run IS NULL AND NOT j.paused
          AND j.product || '/' || j.job_group = ANY($2)
        ORDER BY j.next_due
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE jobs j
        SET running_run = scheduler_uuid_v7(), next_due = NULL, version = j.version + 1, updated_at = now()
        FROM due
        WHERE j.id = due.id
        RETURNING j.id, j.product, j.job_group, j.running_run, j.attempt, j.payload, due.next_due AS scheduled_for
    ), inserted AS (
        INSERT INTO runs (id, job_id, product, job_group, attempt, scheduled_for, claimed_at, started_at, node, outcome, trace_id)
        SELECT c.running_run, c.id, c.product, c.job_group, c.attempt, c.scheduled_for, now(), now(), $3, 'running',
               replace(gen_random_uuid()::text, '-', '')
        FROM claimed c
        RETURNING id, trace_id
    )
    SELECT c.id AS job_id, c.product, c.job_group, c.running_run AS run_id, c.attempt, c.scheduled_for,
           c.payload::text AS payload, i.trace_id
    FROM claimed c JOIN inserted i ON i.id = c.running_run
    ORDER BY c.scheduled_for";

/// The earliest due instant among claimable jobs of the groups in $1, and the database clock.
pub const NEXT_DUE: &str = "
    SELECT (SELECT min(j.next_due) FROM jobs j
            WHERE j.next_due IS NOT NULL AND j.running_run IS NULL AND NOT j.paused
              AND j.product || '/' || j.job_group = ANY($1)) AS next_due,
           now() AS db_now";

/// Records a batch of completions. A completion counts only while its run is still `running`
/// and its job still points at it (the claim holds); anything else is a stale completion and
/// changes nothing. The job then finishes, or is due again when it was rescheduled while it ran
/// or the run was given back by a stopping node.
pub const FINISH_RUNS: &str = "
    WITH f AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                             $6::text[], $7::text[], $8::text[], $9::bool[])
            AS f(run_id, job_id, outcome, started_at, finished_at, error, output, listener_error, requeue)
    ), done AS (
        UPDATE runs r
        SET outcome = f.outcome, started_at = f.started_at, finished_at = f.finished_at, error = f.error,
            output = f.output::jsonb, listener_error = f.listener_error
        FROM f
        WHERE r.id = f.run_id AND r.outcome = 'running'
        RETURNING r.id, r.job_id, r.scheduled_for, f.outcome, f.requeue, f.finished_at
    ), moved AS (
        UPDATE jobs j
        SET running_run = NULL,
            next_due = COALESCE(j.next_due, CASE WHEN d.requeue THEN d.scheduled_for END),
            sort_due = COALESCE(j.next_due, CASE WHEN d.requeue THEN d.scheduled_for END, j.sort_due),
            final_status = CASE
                WHEN COALESCE(j.next_due, CASE WHEN d.requeue THEN d.scheduled_for END) IS NOT NULL THEN NULL
                WHEN d.outcome = 'succeeded' THEN 'completed'
                WHEN d.outcome = 'vetoed' THEN 'vetoed'
                ELSE 'failed' END,
            version = j.version + 1,
            updated_at = d.finished_at
        FROM done d
        WHERE j.id = d.job_id AND j.running_run = d.id
        RETURNING j.id
    )
    SELECT (SELECT count(*) FROM done) AS runs, (SELECT count(*) FROM moved) AS jobs";

/// Gives back claimed runs that never started.
pub const RELEASE_RUNS: &str = "
    WITH gone AS (
        DELETE FROM runs r WHERE r.id = ANY($1) AND r.outcome = 'running'
        RETURNING r.id, r.job_id, r.scheduled_for
    )
    UPDATE jobs j
    SET running_run = NULL, next_due = COALESCE(j.next_due, g.scheduled_for),
        sort_due = COALESCE(j.next_due, g.scheduled_for), version = j.version + 1, updated_at = now()
    FROM gone g
    WHERE j.id = g.job_id AND j.running_run = g.id";

pub const REGISTER_NODE: &str = "
    INSERT INTO nodes (id, host, groups) VALUES ($1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, groups = excluded.groups";

pub const HEARTBEAT: &str = "
    UPDATE nodes SET heartbeat_at = now() WHERE id = $1 AND stopped_at IS NULL RETURNING id";

pub const STOP_NODE: &str = "UPDATE nodes SET stopped_at = now(), heartbeat_at = now() WHERE id = $1";

pub const LIST_NODES: &str = "
    SELECT id, host, groups, started_at, heartbeat_at, stopped_at,
           stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => $1::double precision / 1e6) AS live
    FROM nodes
    WHERE stopped_at IS NULL OR stopped_at > now() - interval '1 hour'
    ORDER BY started_at, id";

/// Marks nodes whose heartbeat is older than $1 microseconds as stopped, so a node that was only
/// frozen learns at its next heartbeat that it was declared dead; forgets nodes stopped a day ago.
pub const MARK_DEAD_NODES: &str = "
    WITH dead AS (
        UPDATE nodes SET stopped_at = now()
        WHERE stopped_at IS NULL AND heartbeat_at < now() - make_interval(secs => $1::double precision / 1e6)
        RETURNING id
    )
    DELETE FROM nodes WHERE stopped_at < now() - interval '1 day'";

/// Resolves runs held by nodes that are stopped, unknown, or silent for more than $1
/// microseconds, for the groups in $2 (with their recovery flags in $3). Each run becomes
/// `abandoned`; its job runs again when its type requests recovery, else it ends `failed`.
pub const RESCUE_RUNS: &str = "
    WITH g AS (
        SELECT * FROM unnest($2::text[], $3::bool[]) AS g(grp, recover)
    ), dead AS (
        SELECT r.id, g.recover
        FROM runs r
        JOIN g ON g.grp = r.product || '/' || r.job_group
        LEFT JOIN nodes n ON n.id = r.node
        WHERE r.outcome = 'running'
          AND (n.id IS NULL OR n.stopped_at IS NOT NULL
               OR n.heartbeat_at < now() - make_interval(secs => $1::double precision / 1e6))
        FOR UPDATE OF r SKIP LOCKED
    ), abandoned AS (
        UPDATE runs r
        SET outcome = 'abandoned', finished_at = now(),
            error = 'its node ' || r.node || ' stopped heartbeating'
                    || CASE WHEN d.recover THEN '; the job runs again (its type requests recovery)' ELSE '' END
        FROM dead d
        WHERE r.id = d.id
        RETURNING r.id, r.job_id, r.node, r.scheduled_for, d.recover
    ), moved AS (
        UPDATE jobs j
        SET running_run = NULL,
            next_due = COALESCE(j.next_due, CASE WHEN a.recover THEN a.scheduled_for END),
            sort_due = COALESCE(j.next_due, CASE WHEN a.recover THEN a.scheduled_for END, j.sort_due),
            attempt = CASE WHEN a.recover THEN j.attempt + 1 ELSE j.attempt END,
            final_status = CASE
                WHEN COALESCE(j.next_due, CASE WHEN a.recover THEN a.scheduled_for END) IS NOT NULL THEN NULL
                ELSE 'failed' END,
            version = j.version + 1, updated_at = now()
        FROM abandoned a
        WHERE j.id = a.job_id AND j.running_run = a.id
        RETURNING j.id
    )
    SELECT a.id AS run_id, a.job_id, a.node, a.recover AS rerun FROM abandoned a";
