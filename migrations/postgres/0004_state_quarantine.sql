-- isdown storage schema, version 4 (PostgreSQL), as SQLite's 0004_state_quarantine.sql.
-- Monitor snapshots that could not be read back: kept aside (raw, as found) with the reason,
-- so one corrupt row costs that monitor its state, never the whole monitor loop.
CREATE TABLE quarantined_state (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor  TEXT NOT NULL,
    snapshot BYTEA,
    reason   TEXT NOT NULL,
    at       BIGINT NOT NULL
);
