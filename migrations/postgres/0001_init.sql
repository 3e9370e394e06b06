-- isdown storage schema, version 1 (PostgreSQL).
--
-- The same tables, columns and meanings as SQLite's 0001_init.sql (src/store/migrations/); the
-- numbering of the two directories stays aligned, so a schema change is one new file in each
-- with the same number. Released migrations are never edited: sqlx records a checksum of each
-- one it applied and refuses to start when the embedded text differs.
--
-- All times are Unix milliseconds (UTC) in BIGINT. Codes (verdict, blame, resolution) are the
-- same small integers as in SQLite (src/store/codes.rs), in SMALLINT. Nothing here assumes one
-- isdown process: several may share the database (keys come from identity columns, the one
-- open incident per monitor is a unique index, and rollups are added to by upserts that
-- PostgreSQL serialises per row).

-- Monitors. `key` is the compact handle the high-volume tables use instead of repeating the
-- text id in every row; a monitor seen first in results gets a row with NULL description
-- columns until it is registered. Rows are never deleted, so a key is stable forever (and may
-- be cached by every process).
CREATE TABLE monitors (
    key      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    provider TEXT,
    model    TEXT,
    probe    TEXT
);

-- Raw results, kept for `Retention::raw`; keyed monitor first, so "newest N of a monitor" and
-- pruning are index range scans. Columns ordered widest first, which spares alignment padding.
-- verdict and blame: the codes of src/store/codes.rs (blame NULL: none). Latencies are whole
-- microseconds. explanation is NULL for healthy results.
CREATE TABLE results (
    monitor_key BIGINT NOT NULL REFERENCES monitors (key),
    at          BIGINT NOT NULL,
    latency_us  BIGINT,
    ttft_us     BIGINT,
    status      INTEGER,
    verdict     SMALLINT NOT NULL,
    blame       SMALLINT,
    explanation TEXT,
    PRIMARY KEY (monitor_key, at)
);

-- Rollups, one row per (monitor, resolution, bucket), upserted as results are written.
-- resolution: 0 minute, 1 hour, 2 day; bucket_start is aligned to the resolution (UTC).
-- Keyed monitor first (SQLite keys them time first, for its clustered B-tree): PostgreSQL's
-- table is a heap, and an upsert that only changes counters is a HOT update that touches no
-- index, so the key order costs writes nothing and makes one monitor's window one range scan;
-- pruning goes monitor by monitor. fillfactor 80 leaves room on each page for those updates.
-- Counters are INTEGER: results are unique per monitor and millisecond, so even a day bucket
-- holds at most 86.4 million of them, inside INTEGER's 2.1 billion.
-- healthy = up + degraded; provider_failed = failures blamed on the provider; other_failed =
-- failures blamed on the account, the request or the network (left out of uptime).
-- le_* count healthy results by latency, one column per bound of LATENCY_BUCKETS_MS (upper
-- bound inclusive, as Prometheus `le`), le_inf above the last bound.
CREATE TABLE rollups (
    monitor_key     BIGINT NOT NULL REFERENCES monitors (key),
    bucket_start    BIGINT NOT NULL,
    resolution      SMALLINT NOT NULL CHECK (resolution IN (0, 1, 2)),
    total           INTEGER NOT NULL DEFAULT 0,
    healthy         INTEGER NOT NULL DEFAULT 0,
    degraded        INTEGER NOT NULL DEFAULT 0,
    provider_failed INTEGER NOT NULL DEFAULT 0,
    other_failed    INTEGER NOT NULL DEFAULT 0,
    le_50           INTEGER NOT NULL DEFAULT 0,
    le_100          INTEGER NOT NULL DEFAULT 0,
    le_200          INTEGER NOT NULL DEFAULT 0,
    le_300          INTEGER NOT NULL DEFAULT 0,
    le_500          INTEGER NOT NULL DEFAULT 0,
    le_750          INTEGER NOT NULL DEFAULT 0,
    le_1000         INTEGER NOT NULL DEFAULT 0,
    le_1500         INTEGER NOT NULL DEFAULT 0,
    le_2000         INTEGER NOT NULL DEFAULT 0,
    le_3000         INTEGER NOT NULL DEFAULT 0,
    le_5000         INTEGER NOT NULL DEFAULT 0,
    le_7500         INTEGER NOT NULL DEFAULT 0,
    le_10000        INTEGER NOT NULL DEFAULT 0,
    le_15000        INTEGER NOT NULL DEFAULT 0,
    le_20000        INTEGER NOT NULL DEFAULT 0,
    le_30000        INTEGER NOT NULL DEFAULT 0,
    le_60000        INTEGER NOT NULL DEFAULT 0,
    le_inf          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_key, resolution, bucket_start)
) WITH (fillfactor = 80);

-- Incidents. `monitor` is the text id (a network incident is filed under "*"); verdict and kind
-- are the contract names. An identity never hands out an id twice, so an id, once sent in an
-- alert, is never given to another incident after old ones are pruned.
CREATE TABLE incidents (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    failed_probes BIGINT NOT NULL,
    first_error   TEXT,
    last_error    TEXT
);

-- The database itself guarantees at most one open incident per monitor, whichever process
-- opens it.
CREATE UNIQUE INDEX incidents_one_open_per_monitor ON incidents (monitor) WHERE ended_at IS NULL;
CREATE INDEX incidents_by_start ON incidents (started_at);
CREATE INDEX incidents_by_monitor ON incidents (monitor, started_at);

-- The monitor state machines' snapshots (JSON text, opaque to the store).
CREATE TABLE monitor_state (
    monitor  TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL
);
