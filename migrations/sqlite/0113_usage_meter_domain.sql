-- See the PostgreSQL migration of the same number. SQLite compiles a
-- table's CHECK once per prepared statement: usage_records keeps its own.
SELECT 1;
