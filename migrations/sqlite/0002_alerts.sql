-- isdown storage schema, version 2: the alert outbox.
--
-- Every alert is a row here before any receiver sees it; a row is marked delivered only after
-- the receiver took it. A restart therefore resends exactly the rows not yet marked.

-- One alert group: the incidents announced together in one message (one per kind and grouping
-- window). `dedup_key` is the group's identity in receivers (PagerDuty, Opsgenie, mail
-- threading), fixed when the group is created so a resend carries the same key.
-- `resolved_at` is set when the resolve message was queued.
CREATE TABLE alert_groups (
    id           INTEGER PRIMARY KEY,
    dedup_key    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    opened_at    INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    resolved_at  INTEGER
);
CREATE INDEX alert_groups_unresolved ON alert_groups (id) WHERE resolved_at IS NULL;

CREATE TABLE alert_group_incidents (
    group_id    INTEGER NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    incident_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, incident_id)
) WITHOUT ROWID;

-- One message for one channel. `payload` is the message as JSON (opaque to the store).
-- Pending: delivered_at and failed_at both NULL. failed_at: given up (permanent error or too old).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    failed_at       INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
