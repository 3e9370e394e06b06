-- isdown storage schema, version 5: what providers' official status pages say.
--
-- Written to translate one to one to PostgreSQL: times are BIGINT (Unix milliseconds), and the
-- only SQLite-specific spelling is `id INTEGER PRIMARY KEY` (the rowid; in PostgreSQL
-- `BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`).

-- One incident as a provider's status page published it. `source_id` is the page's own id;
-- the page is re-read every few minutes and the row updated in place (title, link, impact,
-- times), so `first_seen_at` — when isdown first read it — is the only time of isdown's own.
-- `acknowledged_at` is when the page posted it (Statuspage's `created_at`); `started_at` when
-- the page says it began, which pages often set back to before they posted.
CREATE TABLE official_incidents (
    id              INTEGER PRIMARY KEY,
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

-- The official incident that acknowledged one of ours (matched by provider and time overlap);
-- NULL until one does. Set once and kept.
ALTER TABLE incidents ADD COLUMN official_id BIGINT REFERENCES official_incidents (id);
