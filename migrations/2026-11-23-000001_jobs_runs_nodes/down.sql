DROP FUNCTION scheduler_uuid_v7();
DROP TABLE nodes;
DROP TABLE runs;
DROP TABLE jobs;
