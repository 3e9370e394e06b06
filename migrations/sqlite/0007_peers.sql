-- isdown storage schema, version 7 (SQLite): nothing. Version 7 adds what several instances
-- on one PostgreSQL database need (`peers`, `leases`, `region_states`); a SQLite file serves
-- one instance, which holds every lease itself. The file exists so that both dialects keep
-- one numbering.
SELECT 1;
