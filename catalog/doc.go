// Package catalog says which tables belong to tenants and how.
//
// The model (Table, Snapshot) is pure data: a Snapshot is validated when it
// is built and never changed afterwards; a reload builds a new one.
//
// The store (Init, Load, AddTable, AddGlobal, Remove, List) keeps the catalog
// in the upstream database, schema tenantproxy, so every proxy of a fleet
// reads the same one. Its schema is versioned (tenantproxy.schema_migrations);
// a binary refuses a catalog newer than it understands. Every change runs in
// one transaction that modifies tenantproxy.tables, bumps tenantproxy.version,
// logs to tenantproxy.changes and sends NOTIFY tenantproxy_catalog with the
// new version.
//
// catalog must never build SQL from user input: names travel as query
// parameters or as pgx.Identifier-quoted text, and tables in Postgres's own
// schemas or in schema tenantproxy can never be catalogued.
package catalog
