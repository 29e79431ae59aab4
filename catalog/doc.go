// Package catalog says which tables belong to tenants and how. The model
// (Table, Snapshot) is pure data; Snapshots are immutable and replaced
// whole. The store (Init, Load, AddTable, ...) keeps the catalog in the
// upstream database, schema tenantproxy, so every proxy of a fleet reads the
// same one; every change bumps a version, is logged, and sends NOTIFY.
package catalog
