-- The scheduler's schema, version 1.
--
-- `jobs` is the hot table: one row per job. What the poll reads (`next_due` of claimable
-- jobs) is a small partial index; finished jobs stay readable but leave both partial indexes.
-- Run history lives in `runs`; live nodes in `nodes`.

CREATE TABLE jobs (
    id           uuid        PRIMARY KEY,
    product      text        NOT NULL,
    job_group    text        NOT NULL,
    -- The schedule as the service reads it back (one-time now; recurring forms later).
    schedule     jsonb       NOT NULL,
    -- The job's anchor instant, shown as `when`.
    when_at      timestamptz NOT NULL,
    -- The request payload: the POST body's keys other than the service's own.
    payload      jsonb       NOT NULL,
    paused       boolean     NOT NULL DEFAULT false,
    -- The next fire; NULL when none is pending.
    next_due     timestamptz,
    -- Position in the group's job list: the next fire, or the fire in progress.
    sort_due     timestamptz NOT NULL,
    -- Attempt number the next run of this fire will have.
    attempt      integer     NOT NULL DEFAULT 1,
    -- The run in progress (the claim); NULL when none.
    running_run  uuid,
    -- NULL while unfinished.
    final_status text CHECK (final_status IN ('completed', 'failed', 'vetoed')),
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- What the claim reads: claimable jobs by due instant.
CREATE INDEX jobs_claimable_by_due ON jobs (next_due)
    WHERE next_due IS NOT NULL AND running_run IS NULL AND NOT paused;
-- Every fire rewrites a job row twice: vacuum and re-analyse after 2 % of the rows changed
-- (PostgreSQL's default waits for 10 % / 20 %), so the due index stays lean.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- What the list reads: a group's unfinished jobs, soonest first.
CREATE INDEX jobs_unfinished_by_group ON jobs (product, job_group, sort_due, id)
    WHERE final_status IS NULL;

CREATE TABLE runs (
    -- Insertion order: "newest first" and keyset pagination.
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    id             uuid        PRIMARY KEY,
    -- No foreign key: history outlives deleted jobs.
    job_id         uuid        NOT NULL,
    product        text        NOT NULL,
    job_group      text        NOT NULL,
    attempt        integer     NOT NULL,
    scheduled_for  timestamptz NOT NULL,
    claimed_at     timestamptz NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz,
    node           text        NOT NULL,
    outcome        text        NOT NULL
        CHECK (outcome IN ('running', 'succeeded', 'failed', 'vetoed', 'cancelled', 'abandoned')),
    error          text,
    output         jsonb,
    listener_error text,
    trace_id       text        NOT NULL
);

ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);

CREATE UNIQUE INDEX runs_seq ON runs (seq);
CREATE INDEX runs_by_job ON runs (job_id, seq DESC);
-- A job never has two runs in progress, whatever the nodes believe.
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id) WHERE outcome = 'running';
-- What the rescuer reads: runs in progress by node.
CREATE INDEX runs_running_by_node ON runs (node) WHERE outcome = 'running';

CREATE TABLE nodes (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    -- The product/groups this node has plugins for, as "product/group".
    groups       text[]      NOT NULL DEFAULT '{}',
    stopped_at   timestamptz
);

-- A version-7 UUID (time-ordered) from the database clock.
CREATE FUNCTION scheduler_uuid_v7() RETURNS uuid AS $$
    SELECT encode(
        set_bit(
            set_bit(
                overlay(uuid_send(gen_random_uuid())
                        PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                        FROM 1 FOR 6),
                52, 1),
            53, 1),
        'hex')::uuid;
$$ LANGUAGE sql VOLATILE;
