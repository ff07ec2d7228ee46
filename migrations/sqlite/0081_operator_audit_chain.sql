-- The operators' own audit trail (sign-ins, lockouts, enrolment, API keys)
-- is hash-chained like each tenant's: every row carries the hash of the
-- row before it, so `idbroker audit verify` detects a row changed, removed
-- or inserted after the fact. Rows written before this migration keep
-- empty hashes; the chain starts at the first row written after it.
ALTER TABLE operator_audit ADD COLUMN prev_hash text NOT NULL DEFAULT '';
ALTER TABLE operator_audit ADD COLUMN hash text NOT NULL DEFAULT '';
