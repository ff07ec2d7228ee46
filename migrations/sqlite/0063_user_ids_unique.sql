-- See the PostgreSQL migration of the same number.
DROP INDEX users_id;
CREATE UNIQUE INDEX users_id ON users (id);
