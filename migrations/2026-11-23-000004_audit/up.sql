-- The audit trail: every change made through the API, who made it and when; read newest first.
CREATE TABLE audit (
    seq       bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL,
    who       text        NOT NULL,
    action    text        NOT NULL,
    method    text        NOT NULL,
    path      text        NOT NULL,
    status    integer     NOT NULL,
    product   text,
    job_group text,
    target    text
);
CREATE INDEX audit_by_product ON audit (product, seq DESC);
CREATE INDEX audit_by_who ON audit (who, seq DESC);
