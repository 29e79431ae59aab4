// Package e2e holds the end-to-end tests: a real PostgreSQL (a throwaway
// cluster, or TENANTPROXY_TEST_DSN), the real tenantproxy binary, and real
// clients (pgx and psql). Nothing of Postgres is mocked.
package e2e
