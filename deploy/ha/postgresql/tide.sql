-- The database and role of a Tide cluster's store (run once, as the postgres superuser):
--   psql -v tide_password="'$(cat /etc/tide/pg.pass)'" -f deploy/ha/postgresql/tide.sql
-- Tide creates and migrates its own tables (schema `tide`, versioned) at the first start.
CREATE ROLE tide LOGIN PASSWORD :tide_password;
CREATE DATABASE tide OWNER tide;
\connect tide
CREATE SCHEMA IF NOT EXISTS tide AUTHORIZATION tide;
REVOKE ALL ON DATABASE tide FROM PUBLIC;
-- A controller paused inside a transaction (SIGSTOP, a frozen VM) must not hold the lock row
-- for others: its session is ended after 10 s idle in a transaction; its writes are refused
-- (fenced) anyway once its lease expired.
ALTER ROLE tide SET idle_in_transaction_session_timeout = '10s';
-- No statement of Tide's takes long; a stuck one is cut (Tide reports TIDE_STORE_UNAVAILABLE).
ALTER ROLE tide SET statement_timeout = '30s';
ALTER ROLE tide SET search_path = tide;
