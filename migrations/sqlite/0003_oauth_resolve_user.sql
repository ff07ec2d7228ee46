-- The OpenID Provider's lookup of a user's tenant by user id alone (issue 3;
-- POST /api/v1/users/{id}/revoke_sessions). users is keyed (tenant_id, id),
-- so the lookup by id needs its own index.
CREATE INDEX users_id ON users (id);
