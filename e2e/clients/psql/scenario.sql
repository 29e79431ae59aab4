-- psql scenario of tenantproxy's client compatibility matrix (see
-- e2e/clients_test.go). Run with -v ON_ERROR_STOP=1 and the variables tag,
-- tenant and other_id; each check sets :ok with \gset and prints
-- "ok <step>" or "FAIL <step>".
\echo version: psql :VERSION_NAME
\pset pager off

-- introspection, as people type it
\dt
\d accounts
\d+ notes
\dn
SELECT count(*) = 4 AS ok FROM information_schema.columns
  WHERE table_schema = 'public' AND table_name = 'accounts' \gset
\if :ok
  \echo ok introspect
\else
  \echo FAIL introspect
  \quit
\endif

INSERT INTO accounts (name) VALUES (:'tag') RETURNING id AS aid, tenant_id = :tenant AS ok \gset
\if :ok
  \echo ok insert fills the tenant
\else
  \echo FAIL insert fills the tenant
  \quit
\endif
INSERT INTO notes (account_id, body) VALUES (:aid, 'hello') RETURNING id AS nid \gset

SELECT count(*) = 1 AS ok FROM accounts a JOIN notes n ON n.account_id = a.id
  WHERE a.id = :aid AND a.name = :'tag' AND n.body = 'hello' \gset
\if :ok
  \echo ok join reads back
\else
  \echo FAIL join reads back
  \quit
\endif

UPDATE notes SET stars = stars + 1 WHERE id = :nid;
SELECT :ROW_COUNT = 1 AS ok \gset
\if :ok
  \echo ok update
\else
  \echo FAIL update
  \quit
\endif

-- a transaction that is rolled back, with a refusal and a savepoint inside
BEGIN;
INSERT INTO accounts (name) VALUES (:'tag' || '-rollback');
SAVEPOINT before_refusal;
\set ON_ERROR_STOP 0
SELECT * FROM secrets;
\set refused_state :SQLSTATE
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT before_refusal;
SELECT :'refused_state' = '42501' AS ok \gset
\if :ok
  \echo ok refusal inside a transaction
\else
  \echo FAIL refusal inside a transaction
  \quit
\endif
ROLLBACK;
SELECT count(*) = 0 AS ok FROM accounts WHERE name = :'tag' || '-rollback' \gset
\if :ok
  \echo ok rollback
\else
  \echo FAIL rollback
  \quit
\endif

-- SQL-level PREPARE outlives a transaction: a proxy in transaction
-- pooling mode refuses it, so it runs in session mode only.
SELECT :'pool_mode' = 'session' AS session_pool \gset
\if :session_pool
PREPARE account_by_id(bigint) AS SELECT name FROM accounts WHERE id = $1;
EXECUTE account_by_id(:aid) \gset prepared_
EXECUTE account_by_id(:aid) \gset again_
SELECT :'prepared_name' = :'tag' AND :'again_name' = :'tag' AS ok \gset
\if :ok
  \echo ok prepared query
\else
  \echo FAIL prepared query
  \quit
\endif
DEALLOCATE account_by_id;
\else
  \echo skip prepared query: SQL PREPARE needs --pool-mode session
\endif

COPY (SELECT name FROM accounts WHERE id = :aid) TO STDOUT;

SELECT count(*) = 0 AS ok FROM accounts WHERE id = :other_id \gset
\if :ok
  \echo ok other tenant's row is not seen
\else
  \echo FAIL other tenant's row is not seen
  \quit
\endif
UPDATE accounts SET name = 'stolen' WHERE id = :other_id;
SELECT :ROW_COUNT = 0 AS ok \gset
\if :ok
  \echo ok other tenant's row is not updated
\else
  \echo FAIL other tenant's row is not updated
  \quit
\endif
DELETE FROM notes WHERE account_id = :other_id;
SELECT :ROW_COUNT = 0 AS ok \gset
\if :ok
  \echo ok other tenant's notes are not deleted
\else
  \echo FAIL other tenant's notes are not deleted
  \quit
\endif
SELECT array_agg(DISTINCT tenant_id) = ARRAY[:tenant] AS ok FROM accounts \gset
\if :ok
  \echo ok only its own tenant
\else
  \echo FAIL only its own tenant
  \quit
\endif

DELETE FROM notes WHERE id = :nid;
SELECT :ROW_COUNT = 1 AS ok \gset
\if :ok
  \echo ok delete
\else
  \echo FAIL delete
  \quit
\endif

\set ON_ERROR_STOP 0
SELECT * FROM secrets;
\set ON_ERROR_STOP 1
SELECT :'SQLSTATE' = '42501' AS ok \gset
\if :ok
  \echo ok uncatalogued table refused
\else
  \echo FAIL uncatalogued table refused
  \quit
\endif
SELECT 1 AS one \gset
\echo ok session usable after refusal
