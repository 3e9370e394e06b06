-- isdown storage schema, version 8: which instance, in which region, opened each incident
-- (`opened_by`, `opened_in`); NULL for incidents opened before version 8.
ALTER TABLE incidents ADD COLUMN opened_by TEXT;
ALTER TABLE incidents ADD COLUMN opened_in TEXT;
