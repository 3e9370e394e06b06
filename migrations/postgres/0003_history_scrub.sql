-- isdown storage schema, version 3 (PostgreSQL): the history scrub mark, as SQLite's
-- 0003_history_scrub.sql.
--
-- SQLite files written before isdown scrubbed text on its way into the store are scrubbed once
-- at start-up. A PostgreSQL database never held such rows — every row arrived through the
-- store's scrub, or through `isdown db copy` from a SQLite file that was opened (and so
-- scrubbed) first — so it is marked done at creation.
CREATE TABLE history_scrubbed (
    done_at BIGINT NOT NULL
);
INSERT INTO history_scrubbed (done_at) VALUES ((EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);
