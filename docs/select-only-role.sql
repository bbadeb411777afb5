-- A login role for traefik-gen that can SELECT exactly the columns traefik-gen reads.
--
-- traefik-gen selects Dokploy's routing columns (traefik_gen/sources/dokploy/queries.py)
-- after probing which of them exist (schema.py, through pg_catalog, which every role may
-- read). This script grants SELECT on those columns and nothing else: no other column of
-- those tables (no env, build secret, registry or git credential) and no other table (no
-- ssh-key, certificate, user or session). It still reads two sensitive columns, because
-- routing needs them: security.password (Dokploy keeps basic-auth passwords in plaintext;
-- traefik-gen hashes them) and compose.composeFile (for container names; a compose file
-- may inline secrets). Columns an older Dokploy lacks are skipped: traefik-gen puts
-- Dokploy's default in their place and needs no privilege for them.
--
-- Run it in psql as Dokploy's database user, a superuser in the postgres image, e.g.:
--   docker exec -i "$(docker ps -q -f name=dokploy-postgres | head -n 1)" \
--     psql -X -v ON_ERROR_STOP=1 -U dokploy -d dokploy -v role=traefik_gen \
--     < docs/select-only-role.sql
-- `-v role=...` names the role (default traefik_gen). Then set its password; \password
-- sends only a SCRAM hash, so the password reaches neither the server log nor `ps`:
--   docker exec -it "$(docker ps -q -f name=dokploy-postgres | head -n 1)" \
--     psql -U dokploy -d dokploy -c '\password traefik_gen'
--
-- Run it again after each Dokploy upgrade. A routing column a migration adds (domain.enabled
-- came in v0.30.0) stays unreadable until then, and traefik-gen fails closed on it: it
-- reports the permission error and writes nothing, rather than guess the column's value.
-- The script is idempotent: it creates the role only when missing, then grants anew.

\set ON_ERROR_STOP on
\if :{?role}
\else
  \set role traefik_gen
\endif

-- One transaction: a traefik-gen reading meanwhile sees the old grants or the new ones.
BEGIN;

-- The role: it logs in, and may do nothing else by itself.
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'role')
\gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT CONNECTION LIMIT 5;
-- A second wall behind the missing write privileges; traefik-gen reads in READ ONLY
-- transactions anyway.
ALTER ROLE :"role" SET default_transaction_read_only = on;

GRANT CONNECT ON DATABASE :"DBNAME" TO :"role";
-- USAGE on the schema: without it current_schema() skips the schema, and the probe finds
-- no Dokploy table at all.
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), :'role')
\gexec

-- Start from no table privilege, so that a re-run leaves exactly the list below (revoking
-- a table's privileges revokes its column privileges as well).
SELECT format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', current_schema(), :'role')
\gexec

-- Every column traefik-gen selects, joins or filters on, table by table.
WITH wanted (tbl, col) AS (
  VALUES
    ('application', 'applicationId'),
    ('application', 'appName'),
    ('application', 'labelsSwarm'),
    ('application', 'serverId'),
    ('compose', 'composeId'),
    ('compose', 'appName'),
    ('compose', 'composeType'),
    ('compose', 'composeFile'),
    ('compose', 'serverId'),
    ('domain', 'domainId'),
    ('domain', 'host'),
    ('domain', 'https'),
    ('domain', 'port'),
    ('domain', 'path'),
    ('domain', 'uniqueConfigKey'),
    ('domain', 'applicationId'),
    ('domain', 'composeId'),
    ('domain', 'previewDeploymentId'),
    ('domain', 'serviceName'),
    ('domain', 'domainType'),
    ('domain', 'certificateType'),
    ('domain', 'customCertResolver'),
    ('domain', 'customEntrypoint'),
    ('domain', 'internalPath'),
    ('domain', 'stripPath'),
    ('domain', 'middlewares'),
    ('domain', 'forwardAuthEnabled'),
    ('domain', 'enabled'),
    ('forward_auth_settings', 'forwardAuthSettingsId'),
    ('forward_auth_settings', 'authDomain'),
    ('forward_auth_settings', 'https'),
    ('forward_auth_settings', 'createdAt'),
    ('forward_auth_settings', 'serverId'),
    ('preview_deployments', 'previewDeploymentId'),
    ('preview_deployments', 'appName'),
    ('preview_deployments', 'applicationId'),
    ('redirect', 'redirectId'),
    ('redirect', 'applicationId'),
    ('redirect', 'regex'),
    ('redirect', 'replacement'),
    ('redirect', 'permanent'),
    ('redirect', 'uniqueConfigKey'),
    ('security', 'securityId'),
    ('security', 'applicationId'),
    ('security', 'username'),
    ('security', 'password'),
    ('server', 'serverId'),
    ('server', 'serverType')
)
SELECT format(
  'GRANT SELECT (%s) ON %I.%I TO %I',
  string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
  current_schema(), c.relname, :'role'
)
FROM wanted w
JOIN pg_catalog.pg_class c
  ON c.relname = w.tbl
  AND c.relnamespace = current_schema()::regnamespace
  AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_attribute a
  ON a.attrelid = c.oid AND a.attname = w.col AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY c.relname
ORDER BY c.relname
\gexec

COMMIT;
