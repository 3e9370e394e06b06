-- isdown storage schema, version 6: the durable queue behind the OpenAI Files and Batch API.
--
-- Portable on purpose (a PostgreSQL store runs the same data model): integers, text and
-- binary strings only, no SQLite-only types or table options. Times are Unix milliseconds.
-- Owners are keyed hashes of client keys (`queue::owner`); a key itself is never stored.

-- The random secret that keys the owner hash, created once per database.
CREATE TABLE queue_secret (
    id     INTEGER PRIMARY KEY,
    secret BLOB NOT NULL
);

-- One uploaded file, or one result file of a batch (`batch_key` and `result_kind` set; its
-- lines are the batch's line results, produced when downloaded). `complete` is 0 while an
-- upload is still being written: such a file is invisible and removed at start.
CREATE TABLE queue_files (
    key         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0,
    lines       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    complete    INTEGER NOT NULL DEFAULT 0,
    batch_key   INTEGER,
    result_kind TEXT
);
CREATE INDEX queue_files_owner ON queue_files (owner, created_at);

-- The lines of an uploaded file, as uploaded (blank lines are not stored; `line` is the 1-based
-- line number in the file, which is what errors name).
CREATE TABLE queue_file_lines (
    file_key INTEGER NOT NULL,
    line     INTEGER NOT NULL,
    content  BLOB NOT NULL,
    PRIMARY KEY (file_key, line)
);

-- One batch: the OpenAI batch object's fields, request counts kept in step with its lines.
CREATE TABLE queue_batches (
    key               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    owner             TEXT NOT NULL,
    input_file_key    INTEGER NOT NULL,
    input_file_id     TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    metadata          TEXT,
    status            TEXT NOT NULL,
    errors            TEXT,
    created_at        INTEGER NOT NULL,
    in_progress_at    INTEGER,
    expires_at        INTEGER NOT NULL,
    finalizing_at     INTEGER,
    completed_at      INTEGER,
    failed_at         INTEGER,
    expired_at        INTEGER,
    cancelling_at     INTEGER,
    cancelled_at      INTEGER,
    total             INTEGER NOT NULL DEFAULT 0,
    completed         INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    output_file_id    TEXT,
    error_file_id     TEXT
);
CREATE INDEX queue_batches_owner ON queue_batches (owner, key);
CREATE INDEX queue_batches_status ON queue_batches (status);

-- One request line of a batch. `state`: 0 pending, 1 in flight, 2 done (output file),
-- 3 failed (error file). The result columns are written once, by the update that moves the
-- line from in flight to done or failed, so each line has at most one result.
CREATE TABLE queue_lines (
    batch_key     INTEGER NOT NULL,
    line          INTEGER NOT NULL,
    custom_id     TEXT NOT NULL,
    model         TEXT NOT NULL,
    state         INTEGER NOT NULL,
    dispatches    INTEGER NOT NULL DEFAULT 0,
    finished_at   INTEGER,
    status_code   INTEGER,
    request_id    TEXT,
    provider      TEXT,
    served_model  TEXT,
    attempts      INTEGER,
    body          BLOB,
    error_code    TEXT,
    error_message TEXT,
    PRIMARY KEY (batch_key, line)
);
-- Pending lines by route, oldest batch first: what the dispatcher claims from.
CREATE INDEX queue_lines_pending ON queue_lines (model, batch_key, line) WHERE state = 0;
-- Lines in flight: few at any time; a restart sends them back to pending.
CREATE INDEX queue_lines_in_flight ON queue_lines (batch_key, line) WHERE state = 1;
