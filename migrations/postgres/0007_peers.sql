-- isdown storage schema, version 7 (PostgreSQL): several isdown instances on one database.
--
-- Each instance records itself in `peers` every lease round and holds leases on what it
-- does alone: probing one monitor from its region (`monitor/REGION/ID`) and sending alerts
-- (`alerts`). A lease is held until `expires_at` unless its holder renews it; an instance
-- that dies (kill -9) stops renewing, and another takes over once the lease has expired.
-- Times are the database's clock in Unix milliseconds, so instances on hosts whose clocks
-- disagree still agree on who holds what.

CREATE TABLE peers (
    instance   TEXT PRIMARY KEY,
    region     TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX leases_holder ON leases (holder);

-- What each region's instance sees of each monitor, written when its state changes there:
-- an outage incident opens only when a quorum of regions sees one; fewer make the monitor
-- "regional". `changed_at` lets the other instances read only what changed.
CREATE TABLE region_states (
    monitor    TEXT NOT NULL,
    region     TEXT NOT NULL,
    state      TEXT NOT NULL,
    verdict    TEXT,
    since      BIGINT,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (monitor, region)
);

CREATE INDEX region_states_changed ON region_states (changed_at);
