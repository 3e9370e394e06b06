-- isdown storage schema, version 5 (PostgreSQL): what providers' official status pages say, as
-- SQLite's 0005_official.sql.

-- One incident as a provider's status page published it, updated in place as the page is
-- re-read; `first_seen_at` — when isdown first read it — is the only time of isdown's own.
CREATE TABLE official_incidents (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    title           TEXT NOT NULL,
    url             TEXT,
    impact          TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    resolved_at     BIGINT,
    first_seen_at   BIGINT NOT NULL,
    UNIQUE (provider, source_id)
);
CREATE INDEX official_incidents_by_start ON official_incidents (started_at);

-- The official incident that acknowledged one of ours; NULL until one does. Set once and kept.
ALTER TABLE incidents ADD COLUMN official_id BIGINT REFERENCES official_incidents (id);
