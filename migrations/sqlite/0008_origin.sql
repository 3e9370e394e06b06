-- isdown storage schema, version 8: which instance, in which region, opened each incident
-- (`opened_by`, `opened_in`), and from which region each result was probed (`region`: NULL for
-- the `default` region, so a single instance stores nothing more per result); NULL in rows
-- written before version 8.
ALTER TABLE incidents ADD COLUMN opened_by TEXT;
ALTER TABLE incidents ADD COLUMN opened_in TEXT;
ALTER TABLE results ADD COLUMN region TEXT;
