//! The store's SQL. What decides who runs what is a row lock taken by one statement per batch
//! (`FOR UPDATE SKIP LOCKED`), and every completion is fenced on the claim it answers, so the
//! guarantees come from PostgreSQL's locks and snapshots, not from timing.

/// Columns of a job as [`super::rows::JobRow`] reads them.
pub const JOB_COLUMNS: &str = "j.id, j.product, j.job_group, j.when_at, j.payload::text AS payload, j.paused, \
     j.next_due, j.sort_due, j.running_run, j.final_status, j.version, j.created_at, j.updated_at, \
     j.spec::text AS spec, j.state::text AS state, j.attempt, j.fingerprint, j.idempotency_key";

/// Columns of a run as [`super::rows::RunRow`] reads them. A claimed run a worker has begun
/// reads `running`, with its start, before its record says so (see [`START_RUNS`]).
pub const RUN_COLUMNS: &str = "r.id, r.job_id, r.product, r.job_group, r.attempt, r.scheduled_for, \
     COALESCE(r.started_at, r.began_at) AS started_at, r.finished_at, r.node, \
     CASE WHEN r.outcome = 'claimed' AND r.began_at IS NOT NULL THEN 'running' ELSE r.outcome END AS outcome, \
     r.error, r.output::text AS output, r.listener_error, r.trace_id, r.trigger, r.note";

/// Microseconds since the epoch of a `timestamptz` (how `Ts` appears in stored JSON).
const MICROS: &str = "(extract(epoch FROM {}) * 1000000)::bigint";

fn micros(expr: &str) -> String {
    MICROS.replace("{}", expr)
}

/// Inserts jobs from parallel arrays. A job whose id or idempotency key is taken is not
/// inserted (and not returned).
pub fn insert_jobs(returning: bool) -> String {
    let ret = if returning { format!(" RETURNING {JOB_COLUMNS}") } else { String::new() };
    format!(
        "INSERT INTO jobs AS j (id, product, job_group, schedule, when_at, payload, paused, next_due, sort_due, created_at,
                               updated_at, spec, state, priority, concurrent, idempotency_key, fingerprint)
         SELECT t.id, t.product, t.job_group, COALESCE(t.spec::jsonb, '{{\"type\":\"once\"}}'), t.when_at, t.payload::jsonb,
                t.paused, t.next_due, COALESCE(t.next_due, t.when_at), now(), now(), t.spec::jsonb, t.state::jsonb,
                t.priority, t.concurrent, t.key, t.fingerprint
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bool[], $7::timestamptz[],
                     $8::text[], $9::text[], $10::smallint[], $11::bool[], $12::text[], $13::text[])
              AS t(id, product, job_group, when_at, payload, paused, next_due, spec, state, priority, concurrent, key, fingerprint)
         ON CONFLICT DO NOTHING{ret}"
    )
}

/// The job holding an id, or an idempotency key in a group.
pub fn job_by_id_or_key() -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs j
         WHERE j.id = $1 OR (j.product = $2 AND j.job_group = $3 AND j.idempotency_key = $4)
         ORDER BY (j.idempotency_key = $4) DESC NULLS LAST LIMIT 1"
    )
}

pub fn get_job() -> String {
    format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3")
}

pub fn job_by_key() -> String {
    format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.product = $1 AND j.job_group = $2 AND j.idempotency_key = $3")
}

pub fn get_job_for_update() -> String {
    format!("{} FOR UPDATE", get_job())
}

pub fn list_jobs() -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs j
         WHERE j.product = $1 AND j.job_group = $2 AND j.final_status IS NULL AND (j.sort_due, j.id) > ($3, $4)
         ORDER BY j.sort_due, j.id
         LIMIT $5"
    )
}

/// Replaces a job's spec and progress if it is still at version `$9`.
pub fn reschedule_job() -> String {
    format!(
        "UPDATE jobs j
         SET spec = $4::jsonb, schedule = $4::jsonb, state = $5::jsonb, when_at = $6, next_due = $7,
             sort_due = CASE WHEN j.running_run IS NULL THEN COALESCE($7, j.sort_due) ELSE j.sort_due END,
             priority = $8, version = j.version + 1, updated_at = now(),
             payload = COALESCE($10::jsonb, j.payload), paused = COALESCE($11, j.paused),
             fingerprint = COALESCE($12, j.fingerprint), concurrent = COALESCE($13, j.concurrent)
         WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3 AND j.final_status IS NULL AND j.version = $9
         RETURNING {JOB_COLUMNS}"
    )
}

/// Writes a job's run control as computed in Rust (pause, resume, run-now).
pub fn control_job() -> String {
    format!(
        "UPDATE jobs j
         SET paused = $4, spec = COALESCE($5::jsonb, j.spec), state = COALESCE($6::jsonb, j.state), next_due = $7,
             sort_due = CASE WHEN j.running_run IS NULL THEN COALESCE($7, j.sort_due) ELSE j.sort_due END,
             final_status = CASE WHEN $8 THEN NULL ELSE j.final_status END,
             version = j.version + 1, updated_at = now()
         WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3
         RETURNING {JOB_COLUMNS}"
    )
}

/// Unfinished jobs of some groups (`$1`) whose idempotency key starts with `$2`.
pub const JOBS_KEYED: &str = "
    SELECT id, product, job_group, idempotency_key AS key FROM jobs
    WHERE final_status IS NULL AND idempotency_key IS NOT NULL AND starts_with(idempotency_key, $2)
      AND product || '/' || job_group = ANY($1)
    ORDER BY idempotency_key";

pub const DELETE_JOB: &str = "
    DELETE FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3 AND j.final_status IS NULL
    RETURNING j.id";

/// Whether a job exists in a group, its final status and version.
pub const JOB_STATE: &str = "
    SELECT j.final_status FROM jobs j WHERE j.id = $1 AND j.product = $2 AND j.job_group = $3";

pub fn job_runs() -> String {
    format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.job_id = $1 ORDER BY r.seq DESC LIMIT $2")
}

/// Locks up to `$1` due jobs of the groups in `$2` (skipping rows other nodes hold) for node
/// `$3`, which must be registered and not counted as stopped or dead: the claim.
/// What each locked job does (run, skip, and its next fire) is decided in Rust and written by
/// [`ADVANCE_JOBS`] and [`insert_runs`] in the same transaction.
pub const LOCK_DUE: &str = "
    SELECT j.id, j.product, j.job_group, j.next_due, j.when_at, j.payload::text AS payload, j.spec::text AS spec,
           j.state::text AS state, j.attempt, j.last_started_at, j.last_finished_at, j.priority, j.concurrent, now() AS db_now
    FROM jobs j
    WHERE j.next_due <= now() AND j.next_due IS NOT NULL AND j.running_run IS NULL AND NOT j.paused
      AND j.product || '/' || j.job_group = ANY($2)
      AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $3 AND n.stopped_at IS NULL)
    ORDER BY j.next_due
    LIMIT $1
    FOR UPDATE SKIP LOCKED";

/// Locks due jobs with a positive priority, highest first, however many ordinary jobs are due
/// before them (the partial index `jobs_urgent` holds only such jobs).
pub const LOCK_URGENT: &str = "
    SELECT j.id, j.product, j.job_group, j.next_due, j.when_at, j.payload::text AS payload, j.spec::text AS spec,
           j.state::text AS state, j.attempt, j.last_started_at, j.last_finished_at, j.priority, j.concurrent, now() AS db_now
    FROM jobs j
    WHERE j.next_due <= now() AND j.next_due IS NOT NULL AND j.running_run IS NULL AND NOT j.paused
      AND j.product || '/' || j.job_group = ANY($2) AND j.priority > 0
      AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $3 AND n.stopped_at IS NULL)
    ORDER BY j.priority DESC, j.next_due
    LIMIT $1
    FOR UPDATE SKIP LOCKED";

/// Writes claimed jobs: the run in progress (none for skipped fires and overlapping jobs), the
/// next fire and progress; a job with nothing left to fire and nothing running is finished.
pub const ADVANCE_JOBS: &str = "
    UPDATE jobs j
    SET running_run = t.running_run, next_due = t.next_due, state = COALESCE(t.state::jsonb, j.state),
        sort_due = COALESCE(t.sort_due, t.next_due, j.sort_due),
        final_status = t.final_status,
        version = j.version + 1, updated_at = now()
    FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::text[])
         AS t(id, running_run, next_due, state, sort_due, final_status)
    WHERE j.id = t.id";

/// Inserts the runs of a claim (claimed ones, not started, and skipped fires as finished
/// records).
pub fn insert_runs() -> String {
    let stats = stats_cte("skipped");
    format!(
        "
    WITH ins AS (
    INSERT INTO runs (id, job_id, product, job_group, attempt, scheduled_for, claimed_at, started_at, finished_at,
                      node, outcome, error, trace_id, trigger, note, concurrent)
    SELECT t.id, t.job_id, t.product, t.job_group, t.attempt, t.scheduled_for, now(),
           NULL, CASE WHEN t.outcome = 'claimed' THEN NULL ELSE now() END,
           $9, t.outcome, t.error, t.trace_id, t.trigger, t.note, t.concurrent
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::text[], $8::text[],
                $10::text[], $11::int[], $12::text[], $13::bool[])
         AS t(id, job_id, product, job_group, attempt, scheduled_for, outcome, error, trace_id, trigger, note, concurrent)
    RETURNING product, job_group, outcome, scheduled_for, started_at, finished_at
    ), skipped AS (SELECT * FROM ins WHERE outcome = 'skipped' AND $14)
    , {stats}
    SELECT count(*) AS runs FROM ins"
    )
}

/// The earliest due instant among claimable jobs of the groups in $1, and the database clock.
/// Runs in progress per limited group (`$1`: group names), after the claim has taken each
/// group's advisory lock, so that no other node's claim for the group is between count and
/// insert.
pub const RUNNING_IN_GROUPS: &str = "
    SELECT product || '/' || job_group AS name, count(*) AS running
    FROM runs
    WHERE outcome IN ('claimed', 'running') AND product || '/' || job_group = ANY($1)
    GROUP BY 1";

/// Serialises the claims of one limited group across the cluster, until the transaction ends.
pub const LOCK_GROUP: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('scheduler max running ' || $1, 0)) IS NULL AS locked";

pub const NEXT_DUE: &str = "
    SELECT (SELECT min(j.next_due) FROM jobs j
            WHERE j.next_due IS NOT NULL AND j.running_run IS NULL AND NOT j.paused
              AND j.product || '/' || j.job_group = ANY($1)) AS next_due,
           now() AS db_now";

/// The JSON of a pending extra fire (a retry, a requeue, a recovery) for `state.extra`.
fn extra_json(at: &str, attempt: &str, trigger: &str) -> String {
    format!("jsonb_build_object('at', {}, 'attempt', {attempt}, 'trigger', {trigger}, 'manual', false)", micros(at))
}

/// A job's next fire once a pending extra fire at `at` (none when `at` is NULL) is added.
/// Plain jobs (no spec) keep it in `next_due` and `attempt`; others in `state.extra`.
fn next_due_with(at: &str) -> String {
    format!(
        "(CASE WHEN {at} IS NULL THEN j.next_due
               WHEN j.spec IS NULL THEN COALESCE(j.next_due, {at})
               ELSE LEAST(COALESCE(j.next_due, {at}), {at}) END)"
    )
}

/// The job columns a pending extra fire changes, besides `next_due`.
fn extra_assignments(at: &str, attempt: &str, trigger: &str) -> String {
    let extra = extra_json(at, attempt, trigger);
    format!(
        "next_due = {},
         attempt = CASE WHEN {at} IS NOT NULL AND j.spec IS NULL AND j.next_due IS NULL THEN {attempt} ELSE j.attempt END,
         state = CASE WHEN {at} IS NULL OR j.spec IS NULL THEN j.state
                      ELSE jsonb_set(COALESCE(j.state, '{{}}'::jsonb), '{{extra}}', {extra}) END",
        next_due_with(at)
    )
}

/// The final status of a job whose run `run_id` ended with `outcome`, when nothing is left to
/// fire and no other run of it is in progress; NULL otherwise.
fn final_status_when_done(next_due: &str, running: &str, run_id: &str, outcome: &str) -> String {
    format!(
        "CASE WHEN {next_due} IS NULL AND {running} IS NULL
                   AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.job_id = j.id AND o.outcome IN ('claimed', 'running')
                                   AND o.id <> {run_id})
              THEN CASE WHEN {outcome} IN ('succeeded', 'skipped') THEN 'completed'
                        WHEN {outcome} IN ('vetoed', 'cancelled') THEN {outcome}
                        ELSE 'failed' END
         END"
    )
}

/// Statistics of a window: $1 from, $2 to (or NULL), $3 product, $4 job group (or NULL), $5 per day.
pub const STATS: &str = "
    SELECT CASE WHEN $5 THEN date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' ELSE $1 END AS period,
           product, job_group, outcome, measure, bucket, sum(count)::bigint AS count
    FROM run_stats
    WHERE hour >= date_trunc('hour', $1 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
      AND ($2::timestamptz IS NULL OR hour < $2)
      AND ($3::text IS NULL OR product = $3) AND ($4::text IS NULL OR job_group = $4)
    GROUP BY 1, 2, 3, 4, 5, 6";

/// Due jobs not started per group of `$1` (counted up to `$2`), the oldest due, the clock.
pub const DUE_SUMMARY: &str = "
    SELECT d.product, d.job_group, count(*) AS due, min(d.next_due) AS oldest, now() AS db_now
    FROM (SELECT product, job_group, next_due FROM jobs
          WHERE next_due <= now() AND next_due IS NOT NULL AND running_run IS NULL AND NOT paused
            AND product || '/' || job_group = ANY($1)
          ORDER BY next_due LIMIT $2) d
    GROUP BY 1, 2";

/// The hour (UTC) of an instant, as stored in `run_stats`.
const UTC_HOUR: &str = "(date_trunc('hour', {} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')";

/// A CTE named `stats` adding the runs of CTE `source` to the statistics. `source` has the
/// columns product, job_group, outcome, scheduled_for, started_at, finished_at. Rows are upserted
/// in key order so concurrent writers lock them in the same order.
pub fn stats_cte(source: &str) -> String {
    let hour = UTC_HOUR.replace("{}", "x.finished_at");
    format!(
        "stats AS (
            INSERT INTO run_stats AS s (hour, product, job_group, outcome, measure, bucket, count)
            SELECT hour, product, job_group, outcome, measure, bucket, count(*)
            FROM (
                SELECT {hour} AS hour, x.product, x.job_group, x.outcome, m.measure, m.bucket
                FROM {source} x
                CROSS JOIN LATERAL (VALUES
                    (0::smallint, 0::smallint),
                    (1::smallint, scheduler_bucket(x.started_at - x.scheduled_for)),
                    (2::smallint, scheduler_bucket(x.finished_at - x.started_at))) AS m(measure, bucket)
                WHERE m.bucket IS NOT NULL AND x.finished_at IS NOT NULL
            ) v
            GROUP BY 1, 2, 3, 4, 5, 6
            ORDER BY 2, 3, 1, 4, 5, 6
            ON CONFLICT (product, job_group, hour, outcome, measure, bucket) DO UPDATE SET count = s.count + excluded.count
        )"
    )
}

/// Records a batch of completions. A completion counts only while its run is still in progress
/// (`running`, or `claimed` when its start, committed asynchronously, was lost in a crash of
/// PostgreSQL) and its job still holds it (the claim): anything else is a stale completion and changes
/// nothing. The job then runs again (a retry, a requeue by a stopping node, a rescheduled or
/// recurring fire) or finishes. Returns the earliest next fire among the jobs made claimable.
pub fn finish_runs(stats: bool) -> String {
    let extra = extra_assignments("d.again_at", "d.again_attempt", "d.trigger");
    let running = "(CASE WHEN d.concurrent THEN j.running_run END)";
    let done = final_status_when_done(&next_due_with("d.again_at"), running, "d.id", "d.outcome");
    let stats = if stats { format!(", {}", stats_cte("done")) } else { String::new() };
    format!(
        "WITH f AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                                 $6::text[], $7::text[], $8::text[], $9::bool[], $10::timestamptz[])
                AS f(run_id, job_id, outcome, started_at, finished_at, error, output, listener_error, requeue, retry_at)
        ), done AS (
            UPDATE runs r
            SET outcome = f.outcome, started_at = f.started_at, finished_at = f.finished_at, error = f.error,
                output = f.output::jsonb, listener_error = f.listener_error
            FROM f
            WHERE r.id = f.run_id AND r.outcome IN ('claimed', 'running')
            RETURNING r.id, r.job_id, r.trigger, r.concurrent, f.outcome, f.started_at, f.finished_at,
                      r.product, r.job_group, r.scheduled_for,
                      COALESCE(f.retry_at, CASE WHEN f.requeue THEN r.scheduled_for END) AS again_at,
                      CASE WHEN f.retry_at IS NOT NULL THEN r.attempt + 1 ELSE r.attempt END AS again_attempt
        ), moved AS (
            UPDATE jobs j
            SET running_run = {running},
                {extra},
                final_status = {done},
                last_started_at = d.started_at,
                last_finished_at = d.finished_at,
                version = j.version + 1,
                updated_at = d.finished_at
            FROM done d
            WHERE j.id = d.job_id AND (j.running_run = d.id OR d.concurrent)
            RETURNING j.next_due, j.paused, j.final_status
        ){stats}
        SELECT (SELECT count(*) FROM done) AS runs,
               (SELECT min(next_due) FROM moved WHERE NOT paused AND final_status IS NULL) AS next_due"
    )
}

/// Gives back claimed runs that never started: their records disappear and their fires are due
/// again as before (same attempt). `runs` is a CTE or subquery yielding the ids of `claimed`
/// runs to give back; each given-back run is returned as a rescued run (`handed_back`).
fn hand_back(runs: &str) -> String {
    let extra = extra_assignments("g.scheduled_for", "g.attempt", "g.trigger");
    format!(
        "WITH gone AS (
            DELETE FROM runs r WHERE r.id IN ({runs}) AND r.outcome = 'claimed' AND r.began_at IS NULL AND r.cancel = 0
            RETURNING r.id, r.job_id, r.node, r.scheduled_for, r.attempt, r.trigger, r.concurrent
        ), moved AS (
            UPDATE jobs j
            SET running_run = CASE WHEN g.concurrent THEN j.running_run END, {extra},
                version = j.version + 1, updated_at = now()
            FROM gone g
            WHERE j.id = g.job_id AND (j.running_run = g.id OR g.concurrent)
            RETURNING j.id
        )
        SELECT g.id AS run_id, g.job_id, g.node, 'handed_back' AS result FROM gone g"
    )
}

/// Ends claimed runs that were asked to stop before they started (instead of giving them
/// back): `cancelled`, the job finished or scheduled on as after any cancelled run. `runs`
/// yields the candidate run ids.
fn cancel_unstarted(runs: &str) -> String {
    let running = "(CASE WHEN d.concurrent THEN j.running_run END)";
    let done = final_status_when_done("j.next_due", running, "d.id", "'cancelled'");
    format!(
        "WITH done AS (
            UPDATE runs r SET outcome = 'cancelled', finished_at = now(), error = 'cancelled before it started'
            WHERE r.id IN ({runs}) AND r.outcome = 'claimed' AND r.began_at IS NULL AND r.cancel <> 0
            RETURNING r.id, r.job_id, r.node, r.concurrent
        ), moved AS (
            UPDATE jobs j
            SET running_run = {running}, final_status = {done}, version = j.version + 1, updated_at = now()
            FROM done d
            WHERE j.id = d.job_id AND (j.running_run = d.id OR d.concurrent)
            RETURNING j.id
        )
        SELECT d.id AS run_id, d.job_id, d.node, 'cancelled' AS result FROM done d"
    )
}

/// Gives back the claimed runs `$1` of a node that stops (or could not start them).
pub fn release_runs() -> String {
    hand_back("SELECT unnest($1::uuid[])")
}

/// Ends those of the claimed runs `$1` that were asked to stop (before `release_runs`).
pub fn cancel_released_runs() -> String {
    cancel_unstarted("SELECT unnest($1::uuid[])")
}

/// Records that workers begin the claimed runs `$1` at `$2`, unless their claim is gone (given
/// back) or their node is counted as stopped or dead; returns the runs that may begin. Only the
/// unindexed `began_at` changes, so the update stays on the run's page (no index is touched):
/// the cheapest write that a rescue can read. Idempotent: a retry after a lost answer (same
/// runs, same `$2`) finds them begun and returns them again.
pub const START_RUNS: &str = "
    UPDATE runs r SET began_at = $2
    WHERE r.id = ANY($1)
      AND ((r.outcome = 'claimed' AND (r.began_at IS NULL OR r.began_at = $2))
           OR (r.outcome = 'running' AND r.began_at = $2))
      AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.node AND n.stopped_at IS NULL)
    RETURNING r.id";

/// Writes begun runs' records (`$1` ids, `$2` start instants) that still read `claimed`.
pub const RUNS_STARTED: &str = "
    UPDATE runs r SET outcome = 'running', started_at = COALESCE(r.began_at, t.at)
    FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at)
    WHERE r.id = t.id AND r.outcome = 'claimed'";

/// Marks a claimed or running run as asked to stop (a claimed one learns it as it starts).
pub const CANCEL_RUN: &str = "
    UPDATE runs SET cancel = 1
    WHERE id = $1 AND product = $2 AND job_group = $3 AND outcome IN ('claimed', 'running') AND cancel = 0
    RETURNING id";

/// A run's outcome, if it exists in the group.
pub const RUN_OUTCOME: &str = "SELECT outcome AS id FROM runs WHERE id = $1 AND product = $2 AND job_group = $3";

/// Takes this node's pending cancel requests (of runs executing or waiting for a worker).
pub const TAKE_CANCELS: &str = "
    UPDATE runs SET cancel = 2 WHERE node = $1 AND cancel = 1 AND outcome IN ('claimed', 'running') RETURNING id";

pub const REGISTER_NODE: &str = "
    INSERT INTO nodes (id, host, groups) VALUES ($1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), connected_since = now(), stopped_at = NULL,
                                   groups = excluded.groups";

/// Refreshes node `$1`'s heartbeat; one that comes more than `$2` microseconds after the
/// previous one (an outage, a blocked connection, a frozen process) starts its connected time
/// again. Nothing when the node was stopped or declared dead.
pub const HEARTBEAT: &str = "
    UPDATE nodes
    SET connected_since = CASE WHEN heartbeat_at < now() - make_interval(secs => $2::double precision / 1e6)
                               THEN now() ELSE connected_since END,
        heartbeat_at = now()
    WHERE id = $1 AND stopped_at IS NULL RETURNING id";

pub const STOP_NODE: &str = "UPDATE nodes SET stopped_at = now(), heartbeat_at = now() WHERE id = $1";

pub const LIST_NODES: &str = "
    SELECT id, host, groups, started_at, heartbeat_at, stopped_at,
           stopped_at IS NULL AND heartbeat_at >= now() - make_interval(secs => $1::double precision / 1e6) AS live
    FROM nodes
    WHERE stopped_at IS NULL OR stopped_at > now() - interval '1 hour'
    ORDER BY started_at, id";

/// True when node `me` may judge others: its last heartbeat is within `gap` microseconds and
/// it has heartbeated without a longer gap for at least `dead` microseconds (database clock).
/// After an outage, a blocked connection or a pause of the judge's own, every other node has
/// a full dead-after period to heartbeat again before it can be judged.
fn judge(me: &str, gap: &str, dead: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM nodes me WHERE me.id = {me} AND me.stopped_at IS NULL
                   AND me.heartbeat_at >= now() - make_interval(secs => {gap}::double precision / 1e6)
                   AND me.connected_since <= now() - make_interval(secs => {dead}::double precision / 1e6))"
    )
}

/// A node `n` (left-joined, possibly missing) counts as dead: unknown, stopped, or silent for
/// more than `dead` microseconds.
fn node_dead(dead: &str) -> String {
    format!(
        "(n.id IS NULL OR n.stopped_at IS NOT NULL
          OR n.heartbeat_at < now() - make_interval(secs => {dead}::double precision / 1e6))"
    )
}

/// Marks nodes whose heartbeat is older than $1 microseconds as stopped, when the judging node
/// `$2` may judge (its heartbeats at most `$3` microseconds apart), so a node that was only
/// frozen learns at its next heartbeat that it was declared dead; forgets nodes stopped a day
/// ago.
pub fn mark_dead_nodes() -> String {
    let judge = judge("$2", "$3", "$1");
    format!(
        "WITH dead AS (
            UPDATE nodes SET stopped_at = now()
            WHERE stopped_at IS NULL AND heartbeat_at < now() - make_interval(secs => $1::double precision / 1e6)
              AND {judge}
            RETURNING id
        )
        DELETE FROM nodes WHERE stopped_at < now() - interval '1 day'"
    )
}

/// The claimed runs of dead nodes that their node had not begun (`$1`: dead after,
/// microseconds) in the groups `$2`, when the judging node `$3` may judge (`$4`: its longest
/// heartbeat gap).
fn dead_claimed() -> String {
    let judge = judge("$3", "$4", "$1");
    let dead = node_dead("$1");
    format!(
        "SELECT x.id FROM runs x LEFT JOIN nodes n ON n.id = x.node
         WHERE x.outcome = 'claimed' AND x.began_at IS NULL
           AND x.product || '/' || x.job_group = ANY($2) AND {dead} AND {judge}
         FOR UPDATE OF x SKIP LOCKED"
    )
}

/// Gives back the claimed runs of dead nodes (parameters as [`dead_claimed`]).
pub fn hand_back_dead_runs() -> String {
    hand_back(&dead_claimed())
}

/// Ends the claimed runs of dead nodes that were asked to stop (parameters as
/// [`dead_claimed`]).
pub fn cancel_dead_runs() -> String {
    cancel_unstarted(&dead_claimed())
}

/// Resolves begun runs (`running`, or `claimed` with `began_at`) held by
/// nodes that are stopped, unknown, or silent for more than $1
/// microseconds, for the groups in $2 (with their recovery flags in $3), when the judging node
/// `$4` may judge (`$5`: its longest heartbeat gap). Each run becomes `abandoned`; the fire
/// runs again (next attempt) when its type requests recovery; a job with nothing more to fire
/// ends `failed`.
pub fn rescue_runs() -> String {
    let judge = judge("$4", "$5", "$1");
    let dead = node_dead("$1");
    let stats = stats_cte("abandoned");
    let at = "(CASE WHEN a.recover THEN a.scheduled_for END)";
    let extra = extra_assignments(at, "a.attempt + 1", "a.trigger");
    let running = "(CASE WHEN a.concurrent THEN j.running_run END)";
    let done = final_status_when_done(&next_due_with(at), running, "a.id", "'abandoned'");
    format!(
        "WITH g AS (
            SELECT * FROM unnest($2::text[], $3::bool[]) AS g(grp, recover)
        ), dead AS (
            SELECT r.id, g.recover
            FROM runs r
            JOIN g ON g.grp = r.product || '/' || r.job_group
            LEFT JOIN nodes n ON n.id = r.node
            WHERE (r.outcome = 'running' OR (r.outcome = 'claimed' AND r.began_at IS NOT NULL))
              AND {dead} AND {judge}
            FOR UPDATE OF r SKIP LOCKED
        ), abandoned AS (
            UPDATE runs r
            SET outcome = 'abandoned', started_at = COALESCE(r.started_at, r.began_at), finished_at = now(),
                error = 'its node ' || r.node || ' stopped heartbeating'
                        || CASE WHEN d.recover THEN '; the job runs again (its type requests recovery)' ELSE '' END
            FROM dead d
            WHERE r.id = d.id
            RETURNING r.id, r.job_id, r.node, r.scheduled_for, r.attempt, r.trigger, r.concurrent, d.recover,
                      r.product, r.job_group, r.outcome, r.started_at, r.finished_at
        ), {stats}, moved AS (
            UPDATE jobs j
            SET running_run = {running},
                {extra},
                final_status = {done},
                version = j.version + 1, updated_at = now()
            FROM abandoned a
            WHERE j.id = a.job_id AND (j.running_run = a.id OR a.concurrent)
            RETURNING j.id
        )
        SELECT a.id AS run_id, a.job_id, a.node, CASE WHEN a.recover THEN 'rerun' ELSE 'abandoned' END AS result
        FROM abandoned a"
    )
}
