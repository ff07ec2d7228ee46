-- See the PostgreSQL migration of the same number. SQLite has no row
-- security: AuthenticateDirectory joins directories to tenants directly.
SELECT 1;
