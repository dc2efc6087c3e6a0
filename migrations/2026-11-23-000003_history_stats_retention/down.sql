DROP TABLE run_stats;
DROP FUNCTION scheduler_bucket(interval);
DROP INDEX jobs_finished_by_age;
DROP INDEX runs_started_brin;
DROP INDEX runs_scheduled_brin;
DROP INDEX runs_by_node;
DROP INDEX runs_by_outcome;
DROP INDEX runs_by_group;
