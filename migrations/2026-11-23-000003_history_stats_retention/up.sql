-- Operating the service: history queries, statistics, retention.

-- History pages are newest first (`seq`) under any one filter; each index yields rows in that
-- order, so a page reads about as many rows as it returns however deep it is.
CREATE INDEX runs_by_group ON runs (product, job_group, seq DESC);
CREATE INDEX runs_by_outcome ON runs (outcome, seq DESC);
CREATE INDEX runs_by_node ON runs (node, seq DESC);
-- Pages of a time window come latest first in that time.
CREATE INDEX runs_by_scheduled ON runs (scheduled_for DESC, seq DESC);
CREATE INDEX runs_by_started ON runs (started_at DESC, seq DESC);

-- Retention walks finished runs and jobs by age.
CREATE INDEX runs_finished_by_age ON runs (finished_at) WHERE outcome <> 'running';
CREATE INDEX jobs_finished_by_age ON jobs (updated_at) WHERE final_status IS NOT NULL;

-- The bucket of a duration in the statistics histograms: bucket i holds durations in
-- (2^((i-1)/4), 2^(i/4)] microseconds (about 19 % wide), bucket 0 everything up to 1 µs.
CREATE FUNCTION scheduler_bucket(d interval) RETURNS smallint AS $$
    SELECT CASE WHEN d IS NULL THEN NULL
                WHEN extract(epoch FROM d) * 1e6 <= 1 THEN 0
                ELSE least(ceil(4 * ln(extract(epoch FROM d)::double precision * 1e6) / ln(2)), 32000)::smallint
           END
$$ LANGUAGE sql IMMUTABLE PARALLEL SAFE;

-- Statistics, kept up to date as runs finish (never recomputed from history): per hour,
-- product/group and outcome, the number of runs (measure 0, bucket 0) and histograms of
-- lateness, start − due (measure 1), and duration, end − start (measure 2).
CREATE TABLE run_stats (
    hour      timestamptz NOT NULL,
    product   text        NOT NULL,
    job_group text        NOT NULL,
    outcome   text        NOT NULL,
    measure   smallint    NOT NULL CHECK (measure IN (0, 1, 2)),
    bucket    smallint    NOT NULL,
    count     bigint      NOT NULL,
    PRIMARY KEY (product, job_group, hour, outcome, measure, bucket)
);
CREATE INDEX run_stats_by_hour ON run_stats (hour);
