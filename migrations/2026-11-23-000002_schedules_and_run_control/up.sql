-- Recurring schedules and run control.
--
-- A job with anything beyond a plain one-time fire keeps its spec (triggers and policies) and
-- its progress (each trigger's next fire and count, a pending retry or run-now) as JSON; a
-- plain one-time job keeps neither and is read from `when_at` / `next_due` as before.

ALTER TABLE jobs
    ADD COLUMN spec jsonb,
    ADD COLUMN state jsonb,
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    -- overlap policy `allow`: runs of the job may overlap; the job is never marked running.
    ADD COLUMN concurrent boolean NOT NULL DEFAULT false,
    -- the previous run (overlap policy skip: a fire due while it ran is skipped).
    ADD COLUMN last_finished_at timestamptz,
    ADD COLUMN last_started_at timestamptz,
    ADD COLUMN idempotency_key text,
    ADD COLUMN fingerprint text;

ALTER TABLE jobs DROP CONSTRAINT jobs_final_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_final_status_check
    CHECK (final_status IN ('completed', 'failed', 'vetoed', 'cancelled'));

-- The claim's way to urgent jobs: only jobs with a positive priority are in it.
CREATE INDEX jobs_urgent ON jobs (priority DESC, next_due)
    WHERE priority > 0 AND next_due IS NOT NULL AND running_run IS NULL;

-- One job per idempotency key within a group.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (product, job_group, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE runs
    ADD COLUMN trigger integer,
    ADD COLUMN note text,
    -- 0: none; 1: asked to stop; 2: handed to the node that runs it.
    ADD COLUMN cancel smallint NOT NULL DEFAULT 0,
    ADD COLUMN concurrent boolean NOT NULL DEFAULT false;

ALTER TABLE runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE runs ADD CONSTRAINT runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'vetoed', 'cancelled', 'abandoned', 'skipped'));

-- Runs of a job whose policy allows overlap may run together; every other job never has two.
DROP INDEX runs_one_running_per_job;
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id) WHERE outcome = 'running' AND NOT concurrent;

-- What a claim counts for groups with a limit of runs in progress.
CREATE INDEX runs_running_by_group ON runs (product, job_group) WHERE outcome = 'running';

-- What each node polls for: cancel requests of runs it executes.
CREATE INDEX runs_cancel_requested ON runs (node) WHERE cancel = 1;
