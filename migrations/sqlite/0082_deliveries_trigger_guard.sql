-- See the PostgreSQL migration of the same number. SQLite's trigger is a
-- step of the inserting statement's own program: with no webhook its
-- SELECT reads an empty table and stops, so it stays as it is.
SELECT 1;
