-- lower() now folds every letter, as PostgreSQL's does (store/sqlite_lower.go),
-- not ASCII only: the indexes over it, directly or through the generated
-- _lc columns, are rebuilt so that a row stored with non-ASCII capitals
-- ("ÄLICE") is found by its folded form. Nothing else is stored folded.
-- A directory that holds two users whose userNames differ only in
-- non-ASCII case ("ÄLICE" beside "älice", which PostgreSQL refused) fails
-- this step on users_user_name and rolls it back; docs/reference/scim.md
-- says how to find and resolve them.
REINDEX users_user_name;
REINDEX users_directory_user_name;
REINDEX users_email;
REINDEX groups_display_name;
REINDEX operators_email;
REINDEX events_signins_email;
