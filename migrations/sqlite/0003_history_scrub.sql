-- Marks that text written by versions before the secret choke point (results' explanations,
-- incident errors, monitor snapshots, queued alerts) has been scrubbed of configured secrets.
-- One row once done; see store/sqlite/history.rs.
CREATE TABLE history_scrubbed (
    done_at INTEGER NOT NULL
);
