-- Connection types are plug-ins registered by the binary (package
-- connections), so the schema no longer lists them: a new type needs no
-- migration. The check keeps the shape of a type name, the same rule the
-- store applies, since the name is a path segment of /sso/{type}/{conn}/.
ALTER TABLE connections DROP CONSTRAINT connections_type_check;
ALTER TABLE connections ADD CONSTRAINT connections_type_check
  CHECK (type ~ '^[a-z][a-z0-9_]{0,31}$');
