-- See the PostgreSQL migration of the same number. SQLite already answers
-- the adoption lookup through users_email (store.TestSQLiteHotPathPlans).
SELECT 1;
