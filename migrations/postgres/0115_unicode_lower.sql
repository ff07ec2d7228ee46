-- See the SQLite migration of the same number: PostgreSQL's lower() has
-- always folded every letter in a UTF-8 database, so its indexes stand.
SELECT 1;
