-- OpenID Connect Core §4 (Initiating Login from a Third Party): the URI
-- at which an application starts an authorization request when someone
-- else (an IdP dashboard tile, through the broker) asks it to. '' means
-- the application cannot be the landing of an IdP-initiated sign-in.
ALTER TABLE applications ADD COLUMN initiate_login_uri text NOT NULL DEFAULT '';
