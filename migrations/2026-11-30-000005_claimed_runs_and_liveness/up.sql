-- Faults: a run claimed by a node but not yet handed to a worker is `claimed`, apart from a run
-- that is executing (`running`), so a node that dies gives its claimed runs back instead of
-- having them abandoned; and a node judges others dead only after it has itself been connected
-- for the whole dead-after period (`connected_since`, on the database clock).

ALTER TABLE runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE runs ADD CONSTRAINT runs_outcome_check
    CHECK (outcome IN ('claimed', 'running', 'succeeded', 'failed', 'vetoed', 'cancelled', 'abandoned', 'skipped'));

-- A claimed run holds its job as a running one does.
DROP INDEX runs_one_running_per_job;
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id)
    WHERE outcome IN ('claimed', 'running') AND NOT concurrent;
DROP INDEX runs_running_by_node;
CREATE INDEX runs_running_by_node ON runs (node) WHERE outcome IN ('claimed', 'running');
DROP INDEX runs_running_by_group;
CREATE INDEX runs_running_by_group ON runs (product, job_group) WHERE outcome IN ('claimed', 'running');

-- Since when the node has heartbeated without a gap (reset by a heartbeat that comes after a
-- gap longer than the heartbeat period: an outage, a blocked connection, a frozen process).
ALTER TABLE nodes ADD COLUMN connected_since timestamptz NOT NULL DEFAULT now();

-- When a worker began a claimed run, written before it calls the job (not indexed, so the
-- write can stay a heap-only update of the run's row): a dead node's claimed runs with it had begun
-- (they are abandoned, as running ones are), the others had not (they are given back). The
-- run's outcome becomes `running`, with `started_at`, when its record is written afterwards.
ALTER TABLE runs ADD COLUMN began_at timestamptz;
