-- isdown storage schema, version 2 (PostgreSQL): the alert outbox, as SQLite's 0002_alerts.sql.
--
-- Every alert is a row here before any receiver sees it; a row is marked delivered only after
-- the receiver took it. A restart therefore resends exactly the rows not yet marked.

-- One alert group: the incidents announced together in one message. `dedup_key` is the
-- group's identity in receivers; `resolved_at` is set when the resolve message was queued.
CREATE TABLE alert_groups (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    last_sent_at BIGINT NOT NULL,
    resolved_at  BIGINT
);
CREATE INDEX alert_groups_unresolved ON alert_groups (id) WHERE resolved_at IS NULL;

CREATE TABLE alert_group_incidents (
    group_id    BIGINT NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    incident_id BIGINT NOT NULL,
    PRIMARY KEY (group_id, incident_id)
);

-- One message for one channel. `payload` is the message as JSON (opaque to the store).
-- Pending: delivered_at and failed_at both NULL. failed_at: given up (permanent error or too old).
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel         TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
