-- isdown storage schema, version 6 (PostgreSQL): the durable queue behind the OpenAI Files and
-- Batch API, as SQLite's 0006_queue.sql.
--
-- Every integer is BIGINT here (the queue's rows are few and wide: their bodies dominate), so
-- every one reads back as the store reads integers. Owners are keyed hashes of client keys
-- (`queue::owner`); a key itself is never stored. Lines are claimed with row locks
-- (`FOR UPDATE SKIP LOCKED`), so claims stay exclusive with several isdown processes.

-- The random secret that keys the owner hash, created once per database.
CREATE TABLE queue_secret (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    secret BYTEA NOT NULL
);

-- One uploaded file, or one result file of a batch (`batch_key` and `result_kind` set).
-- `complete` is false while an upload is still being written: such a file is invisible and
-- removed at start.
CREATE TABLE queue_files (
    key         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0,
    lines       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    complete    BOOLEAN NOT NULL DEFAULT false,
    batch_key   BIGINT,
    result_kind TEXT
);
CREATE INDEX queue_files_owner ON queue_files (owner, created_at);

-- The lines of an uploaded file, as uploaded (blank lines are not stored; `line` is the 1-based
-- line number in the file).
CREATE TABLE queue_file_lines (
    file_key BIGINT NOT NULL,
    line     BIGINT NOT NULL,
    content  BYTEA NOT NULL,
    PRIMARY KEY (file_key, line)
);

-- One batch: the OpenAI batch object's fields, request counts kept in step with its lines.
CREATE TABLE queue_batches (
    key               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    owner             TEXT NOT NULL,
    input_file_key    BIGINT NOT NULL,
    input_file_id     TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    metadata          TEXT,
    status            TEXT NOT NULL,
    errors            TEXT,
    created_at        BIGINT NOT NULL,
    in_progress_at    BIGINT,
    expires_at        BIGINT NOT NULL,
    finalizing_at     BIGINT,
    completed_at      BIGINT,
    failed_at         BIGINT,
    expired_at        BIGINT,
    cancelling_at     BIGINT,
    cancelled_at      BIGINT,
    total             BIGINT NOT NULL DEFAULT 0,
    completed         BIGINT NOT NULL DEFAULT 0,
    failed            BIGINT NOT NULL DEFAULT 0,
    output_file_id    TEXT,
    error_file_id     TEXT
);
CREATE INDEX queue_batches_owner ON queue_batches (owner, key);
CREATE INDEX queue_batches_status ON queue_batches (status);

-- One request line of a batch. `state`: 0 pending, 1 in flight, 2 done (output file),
-- 3 failed (error file). The result columns are written once, by the update that moves the
-- line from in flight to done or failed, so each line has at most one result.
CREATE TABLE queue_lines (
    batch_key     BIGINT NOT NULL,
    line          BIGINT NOT NULL,
    custom_id     TEXT NOT NULL,
    model         TEXT NOT NULL,
    state         BIGINT NOT NULL,
    dispatches    BIGINT NOT NULL DEFAULT 0,
    finished_at   BIGINT,
    status_code   BIGINT,
    request_id    TEXT,
    provider      TEXT,
    served_model  TEXT,
    attempts      BIGINT,
    body          BYTEA,
    error_code    TEXT,
    error_message TEXT,
    PRIMARY KEY (batch_key, line)
);
-- Pending lines by route, oldest batch first: what the dispatcher claims from.
CREATE INDEX queue_lines_pending ON queue_lines (model, batch_key, line) WHERE state = 0;
-- Lines in flight: few at any time; a restart sends them back to pending.
CREATE INDEX queue_lines_in_flight ON queue_lines (batch_key, line) WHERE state = 1;
