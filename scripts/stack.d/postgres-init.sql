-- Roles and databases of the stack, idempotent (safe to run on every start).
-- Run by scripts/stack (psql as the superuser) and, in compose.yaml, by the postgres image's
-- /docker-entrypoint-initdb.d on first start. Needs psql (\gexec).
--   pipeline / pipeline   owner of database `pipeline` (the application), may CREATE DATABASE,
--                         may stream changes (REPLICATION, for Debezium)
--   apicurio / apicurio   owner of database `apicurio` (Apicurio Registry's storage)
SELECT 'CREATE ROLE pipeline LOGIN CREATEDB PASSWORD ''pipeline'''
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pipeline') \gexec
SELECT 'CREATE DATABASE pipeline OWNER pipeline'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'pipeline') \gexec
SELECT 'CREATE ROLE apicurio LOGIN PASSWORD ''apicurio'''
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'apicurio') \gexec
SELECT 'CREATE DATABASE apicurio OWNER apicurio'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'apicurio') \gexec
-- Debezium (Kafka Connect, `scripts/stack up --connect`) streams the reference tables through
-- logical replication as `pipeline`, the owner of the tables and of their publication. In
-- production give it a role of its own (README, Running in production).
ALTER ROLE pipeline REPLICATION;
