DROP INDEX runs_cancel_requested;
DROP INDEX runs_running_by_group;
DROP INDEX runs_one_running_per_job;
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id) WHERE outcome = 'running';
ALTER TABLE runs DROP CONSTRAINT runs_outcome_check;
DELETE FROM runs WHERE outcome = 'skipped';
ALTER TABLE runs ADD CONSTRAINT runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'vetoed', 'cancelled', 'abandoned'));
ALTER TABLE runs DROP COLUMN concurrent, DROP COLUMN cancel, DROP COLUMN note, DROP COLUMN trigger;
DROP INDEX jobs_idempotency;
DROP INDEX jobs_urgent;
ALTER TABLE jobs DROP CONSTRAINT jobs_final_status_check;
UPDATE jobs SET final_status = 'failed' WHERE final_status = 'cancelled';
ALTER TABLE jobs ADD CONSTRAINT jobs_final_status_check CHECK (final_status IN ('completed', 'failed', 'vetoed'));
ALTER TABLE jobs DROP COLUMN fingerprint, DROP COLUMN idempotency_key, DROP COLUMN last_finished_at, DROP COLUMN last_started_at,
    DROP COLUMN concurrent, DROP COLUMN priority, DROP COLUMN state, DROP COLUMN spec;
