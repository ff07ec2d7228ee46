-- See the PostgreSQL migration of the same number. SQLite checks a
-- remembered directory token with the full lookup, in process.
SELECT 1;
