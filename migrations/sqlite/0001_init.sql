-- isdown storage schema, version 1 (SQLite).
--
-- Released migrations are never edited: sqlx records a checksum of each one it applied and
-- refuses to start when the embedded text differs. Change the schema with a new 0002_*.sql.
--
-- All times are Unix milliseconds (UTC). Small integer codes are used wherever a row is written
-- per probe, because SQLite stores the integers 0 and 1 in no bytes at all and other small ones
-- in one: a 30 s monitor writes 2,880 results a day, each folded into three rollup rows.

-- Monitors. `key` is the compact handle the high-volume tables use instead of repeating the
-- text id in every row. A monitor seen first in results (the gateway's passive-health hook
-- reports before or without registration) gets a row with NULL description columns until
-- `register_monitors` fills them. Rows are never deleted, so a key is stable forever.
CREATE TABLE monitors (
    key      INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    provider TEXT,
    model    TEXT,
    probe    TEXT
);

-- Raw results, kept for `Retention::raw`. WITHOUT ROWID clusters the rows by (monitor, time),
-- so "newest N of a monitor" and pruning are range scans, and no separate rowid index is paid.
-- verdict: 0 up, 1 degraded, 2 rate_limited, 3 quota_exhausted, 4 auth_failed,
--          5 model_not_found, 6 context_too_long, 7 content_filtered, 8 bad_request,
--          9 overloaded, 10 server_error, 11 unavailable, 12 timeout, 13 network, 14 malformed
-- blame:   NULL none, 0 provider, 1 account, 2 request, 3 network
-- (the codes live in src/store/sqlite/codes.rs; they are on disk, so they never change).
-- Latencies are whole microseconds (3-4 bytes instead of an 8-byte REAL).
-- explanation is NULL for healthy results: they need no words, and most results are healthy.
CREATE TABLE results (
    monitor_key INTEGER NOT NULL REFERENCES monitors (key),
    at          INTEGER NOT NULL,
    verdict     INTEGER NOT NULL,
    blame       INTEGER,
    status      INTEGER,
    latency_us  INTEGER,
    ttft_us     INTEGER,
    explanation TEXT,
    PRIMARY KEY (monitor_key, at)
) WITHOUT ROWID;

-- Rollups, one row per (resolution, bucket, monitor), upserted as results are written.
-- resolution: 0 minute, 1 hour, 2 day; bucket_start is aligned to the resolution (UTC).
-- Keyed time first, not monitor first: every write lands in the current minute, hour and day
-- buckets, which sit together in a few hundred pages even for 10,000 monitors, whereas keying
-- by monitor first would dirty three pages per monitor in every batch. Reading one monitor's
-- window is then one primary-key lookup per bucket (at most 168 + 90 for uptime), and pruning
-- is a range delete.
-- healthy = up + degraded; provider_failed = failures blamed on the provider; other_failed =
-- failures blamed on the account, the request or the network (left out of uptime).
-- le_* count healthy results by latency, one column per bound of LATENCY_BUCKETS_MS (upper
-- bound inclusive, as Prometheus `le`), le_inf above the last bound. Separate integer columns
-- rather than a blob: an upsert adds them in plain SQL, and a zero costs no bytes on disk.
CREATE TABLE rollups (
    resolution      INTEGER NOT NULL CHECK (resolution IN (0, 1, 2)),
    bucket_start    INTEGER NOT NULL,
    monitor_key     INTEGER NOT NULL REFERENCES monitors (key),
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
    PRIMARY KEY (resolution, bucket_start, monitor_key)
) WITHOUT ROWID;

-- Incidents. `monitor` is the text id and not a key into `monitors`, because a network
-- incident concerns every monitor and is filed under "*". verdict and kind are the contract
-- names (few rows, read by people with the sqlite3 shell). AUTOINCREMENT so that an id, once
-- sent in an alert, is never given to another incident after old ones are pruned.
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    failed_probes INTEGER NOT NULL,
    first_error   TEXT,
    last_error    TEXT
);

-- The database itself guarantees at most one open incident per monitor.
CREATE UNIQUE INDEX incidents_one_open_per_monitor ON incidents (monitor) WHERE ended_at IS NULL;
-- Listing is newest first, over all monitors or one.
CREATE INDEX incidents_by_start ON incidents (started_at);
CREATE INDEX incidents_by_monitor ON incidents (monitor, started_at);

-- The monitor state machines' snapshots (opaque JSON), so a restart continues where it stopped.
CREATE TABLE monitor_state (
    monitor  TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL
) WITHOUT ROWID;
