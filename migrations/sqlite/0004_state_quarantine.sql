-- Monitor snapshots that could not be read back: kept aside (raw, as found) with the reason,
-- so one corrupt row costs that monitor its state, never the whole monitor loop.
CREATE TABLE quarantined_state (
    id       INTEGER PRIMARY KEY,
    monitor  TEXT NOT NULL,
    snapshot BLOB,
    reason   TEXT NOT NULL,
    at       INTEGER NOT NULL
);
