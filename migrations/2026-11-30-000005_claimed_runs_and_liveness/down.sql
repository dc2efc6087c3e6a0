ALTER TABLE runs DROP COLUMN began_at;
ALTER TABLE nodes DROP COLUMN connected_since;

DROP INDEX runs_running_by_group;
CREATE INDEX runs_running_by_group ON runs (product, job_group) WHERE outcome = 'running';
DROP INDEX runs_running_by_node;
CREATE INDEX runs_running_by_node ON runs (node) WHERE outcome = 'running';
DROP INDEX runs_one_running_per_job;
UPDATE runs SET outcome = 'running', started_at = claimed_at WHERE outcome = 'claimed';
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id) WHERE outcome = 'running' AND NOT concurrent;

ALTER TABLE runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE runs ADD CONSTRAINT runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'vetoed', 'cancelled', 'abandoned', 'skipped'));
