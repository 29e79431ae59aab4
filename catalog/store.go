package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// NotifyChannel is where every catalog change is announced.
const NotifyChannel = "tenantproxy_catalog"

// migrations create and evolve schema tenantproxy; migration i brings the
// schema to version i+1. Never edit one that has shipped: append.
var migrations = []string{
	`CREATE SCHEMA IF NOT EXISTS tenantproxy;
	 CREATE TABLE tenantproxy.schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
	 CREATE TABLE tenantproxy.version (only_row bool PRIMARY KEY DEFAULT true CHECK (only_row), version bigint NOT NULL);
	 INSERT INTO tenantproxy.version VALUES (true, 1);
	 CREATE TABLE tenantproxy.tables (
	   schema_name   text NOT NULL,
	   table_name    text NOT NULL,
	   kind          text NOT NULL CHECK (kind IN ('tenant', 'global')),
	   tenant_column text,
	   claim         text NOT NULL DEFAULT '',
	   writable      bool NOT NULL DEFAULT false,
	   added_at      timestamptz NOT NULL DEFAULT now(),
	   added_by      text NOT NULL DEFAULT '',
	   PRIMARY KEY (schema_name, table_name),
	   CHECK ((kind = 'tenant') = (tenant_column IS NOT NULL))
	 );
	 CREATE TABLE tenantproxy.changes (
	   id     bigserial PRIMARY KEY,
	   at     timestamptz NOT NULL DEFAULT now(),
	   by     text NOT NULL,
	   action text NOT NULL,
	   detail jsonb NOT NULL
	 );`,
	// 2: path-bound tables, extra claim dimensions, allowed functions and
	// system relations.
	`ALTER TABLE tenantproxy.tables DROP CONSTRAINT tables_kind_check;
	 ALTER TABLE tenantproxy.tables DROP CONSTRAINT tables_check;
	 ALTER TABLE tenantproxy.tables
	   ADD COLUMN parent_schema text, ADD COLUMN parent_table text,
	   ADD COLUMN via_column text, ADD COLUMN parent_key text,
	   ADD CONSTRAINT tables_kind CHECK (kind IN ('tenant', 'global', 'path')),
	   ADD CONSTRAINT tables_shape CHECK ((kind = 'tenant') = (tenant_column IS NOT NULL)
	     AND (kind = 'path') = (parent_schema IS NOT NULL AND parent_table IS NOT NULL AND via_column IS NOT NULL AND parent_key IS NOT NULL));
	 CREATE TABLE tenantproxy.bindings (
	   id          bigserial,
	   schema_name text NOT NULL,
	   table_name  text NOT NULL,
	   column_name text NOT NULL,
	   claim       text NOT NULL DEFAULT '',
	   PRIMARY KEY (schema_name, table_name, column_name),
	   FOREIGN KEY (schema_name, table_name) REFERENCES tenantproxy.tables ON DELETE CASCADE
	 );
	 CREATE TABLE tenantproxy.allowed (
	   kind     text NOT NULL CHECK (kind IN ('function', 'relation')),
	   name     text NOT NULL,
	   added_at timestamptz NOT NULL DEFAULT now(),
	   added_by text NOT NULL DEFAULT '',
	   PRIMARY KEY (kind, name)
	 );`,
}

// SchemaVersion is the catalog schema version this binary understands.
var SchemaVersion = len(migrations)

// ErrNotInitialised means schema tenantproxy does not exist yet.
var ErrNotInitialised = errors.New("the tenant catalog is not initialised in this database; run: tenantproxy catalog init")

// Init creates or migrates the catalog schema. Re-running it is a no-op.
func Init(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// One initialiser at a time across a fleet.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tenantproxy catalog init'))"); err != nil {
		return err
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil && !errors.Is(err, ErrNotInitialised) {
		return err
	}
	if current > SchemaVersion {
		return newerSchema(current)
	}
	for v := current; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("catalog migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO tenantproxy.schema_migrations (version) VALUES ($1)", v+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func newerSchema(v int) error {
	return fmt.Errorf("catalog schema version %d is newer than this tenantproxy understands (%d); upgrade tenantproxy", v, SchemaVersion)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion reads the applied migration count; ErrNotInitialised when
// there is no catalog.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('tenantproxy.schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, ErrNotInitialised
	}
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM tenantproxy.schema_migrations").Scan(&v)
	return v, err
}

// checkReady refuses a missing or newer catalog schema.
func checkReady(ctx context.Context, q querier) error {
	v, err := schemaVersion(ctx, q)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return newerSchema(v)
	}
	if v < SchemaVersion {
		return fmt.Errorf("the catalog schema is at version %d, this tenantproxy needs %d; run: tenantproxy catalog init", v, SchemaVersion)
	}
	return nil
}

// stored is the catalog as one read-only transaction sees it.
type stored struct {
	tx      pgx.Tx
	version int64
	tables  []Table
	extras  Extras
}

// readStored reads the catalog in a repeatable-read, read-only transaction
// and hands it to f while the transaction is open.
func readStored(ctx context.Context, conn *pgx.Conn, f func(stored) error) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := checkReady(ctx, tx); err != nil {
		return err
	}
	st := stored{tx: tx}
	if err := tx.QueryRow(ctx, "SELECT version FROM tenantproxy.version").Scan(&st.version); err != nil {
		return err
	}
	if st.tables, err = listTables(ctx, tx); err != nil {
		return err
	}
	if st.extras, err = listAllowed(ctx, tx); err != nil {
		return err
	}
	return f(st)
}

// Load reads the catalog into a validated snapshot, with each table's live
// columns.
func Load(ctx context.Context, conn *pgx.Conn) (*Snapshot, error) {
	var snap *Snapshot
	err := readStored(ctx, conn, func(st stored) error {
		for i := range st.tables {
			t := &st.tables[i]
			rows, err := st.tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
				       coalesce((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
				                 WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''), '')
				FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
				ORDER BY a.attnum`, quoteQualified(t.Schema, t.Name))
			if err != nil {
				return err
			}
			t.Columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
				var c Column
				return c, r.Scan(&c.Name, &c.Type, &c.Default)
			})
			if err != nil {
				return err
			}
			if len(t.Columns) == 0 {
				return fmt.Errorf("catalogued table %s no longer exists; remove it with: tenantproxy catalog remove %s", t.QualifiedName(), t.QualifiedName())
			}
			if err := loadForeignKeys(ctx, st.tx, t); err != nil {
				return err
			}
			if err := loadUniqueKeys(ctx, st.tx, t); err != nil {
				return err
			}
		}
		s, err := NewSnapshot(st.version, st.tables)
		if err == nil {
			snap = s.WithExtras(st.extras)
		}
		return err
	})
	return snap, err
}

// listAllowed reads the functions and system relations the catalog allows.
func listAllowed(ctx context.Context, tx pgx.Tx) (Extras, error) {
	var e Extras
	rows, err := tx.Query(ctx, "SELECT kind, name FROM tenantproxy.allowed ORDER BY kind, name")
	if err != nil {
		return e, err
	}
	var kind, name string
	_, err = pgx.ForEachRow(rows, []any{&kind, &name}, func() error {
		if kind == "function" {
			e.Functions = append(e.Functions, name)
		} else {
			e.Relations = append(e.Relations, name)
		}
		return nil
	})
	return e, err
}

func listTables(ctx context.Context, tx pgx.Tx) ([]Table, error) {
	rows, err := tx.Query(ctx, `SELECT t.schema_name, t.table_name, t.kind, coalesce(t.tenant_column, ''), t.claim, t.writable,
		  coalesce(t.parent_schema || '.' || t.parent_table, ''), coalesce(t.via_column, ''), coalesce(t.parent_key, ''),
		  coalesce((SELECT array_agg(b.column_name ORDER BY b.id) FROM tenantproxy.bindings b
		            WHERE b.schema_name = t.schema_name AND b.table_name = t.table_name), '{}'),
		  coalesce((SELECT array_agg(b.claim ORDER BY b.id) FROM tenantproxy.bindings b
		            WHERE b.schema_name = t.schema_name AND b.table_name = t.table_name), '{}')
		FROM tenantproxy.tables t ORDER BY t.schema_name, t.table_name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		var kind string
		var cols, claims []string
		err := r.Scan(&t.Schema, &t.Name, &kind, &t.TenantColumn, &t.Claim, &t.Writable, &t.Parent, &t.Via, &t.ParentKey, &cols, &claims)
		t.Kind = Kind(kind)
		if t.Kind == TenantBound && len(cols) > 0 {
			t.Bindings = []Binding{{Column: t.TenantColumn, Claim: t.Claim}}
			for i := range cols {
				t.Bindings = append(t.Bindings, Binding{Column: cols[i], Claim: claims[i]})
			}
		}
		return t, err
	})
}

// List returns the catalogued tables (without columns) and the version.
func List(ctx context.Context, conn *pgx.Conn) ([]Table, int64, error) {
	var st stored
	err := readStored(ctx, conn, func(s stored) error { st = s; return nil })
	return st.tables, st.version, err
}

// TableRef is a table name as a user typed it ("orders", "app.orders",
// `"My Schema"."T"`), resolved with SearchPath when unqualified.
type TableRef struct {
	Name       string
	SearchPath []string
}

// AddTable catalogues a tenant-bound table. The table and its tenant column
// must exist. Adding a catalogued table again updates it. It returns what it
// did, for the user.
func AddTable(ctx context.Context, conn *pgx.Conn, ref TableRef, tenantColumn, claim, by string) (string, error) {
	if tenantColumn == "" {
		return "", errors.New("a tenant-bound table needs --tenant-column")
	}
	return change(ctx, conn, ref, by, "add-table", func(tx pgx.Tx, schema, name string) (string, error) {
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`,
			quoteQualified(schema, name), tenantColumn).Scan(&has); err != nil {
			return "", err
		}
		if !has {
			return "", fmt.Errorf("table %s has no column %q", quoteQualified(schema, name), tenantColumn)
		}
		var kind, primary string
		err := tx.QueryRow(ctx, "SELECT kind, coalesce(tenant_column, '') FROM tenantproxy.tables WHERE schema_name = $1 AND table_name = $2",
			schema, name).Scan(&kind, &primary)
		if err == nil && kind == string(TenantBound) && primary != tenantColumn {
			return addDimension(ctx, tx, schema, name, tenantColumn, claim)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", err
		}
		return upsert(ctx, tx, Table{Schema: schema, Name: name, Kind: TenantBound, TenantColumn: tenantColumn, Claim: claim}, by)
	})
}

// addDimension binds an already tenant-bound table on one more column.
func addDimension(ctx context.Context, tx pgx.Tx, schema, name, column, claim string) (string, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO tenantproxy.bindings (schema_name, table_name, column_name, claim) VALUES ($1, $2, $3, $4)
		ON CONFLICT (schema_name, table_name, column_name) DO UPDATE SET claim = excluded.claim`, schema, name, column, claim); err != nil {
		return "", err
	}
	if claim == "" {
		claim = "the tenant claim"
	}
	return fmt.Sprintf("%s is now also bound on %s (claim %s): a row is visible only when every bound column matches the token; "+
		"to start over, remove the table and add it again", quoteQualified(schema, name), pgx.Identifier{column}.Sanitize(), claim), nil
}

// AddPath catalogues a path-bound table: its column via references a row
// of parent (tenant- or path-bound, catalogued first), whose tenant is the
// row's. With parent empty, the single-column foreign key on via names it.
func AddPath(ctx context.Context, conn *pgx.Conn, ref TableRef, via string, parent TableRef, parentKey, by string) (string, error) {
	if via == "" {
		return "", errors.New("a path-bound table needs --via COLUMN (its foreign key to the parent)")
	}
	return change(ctx, conn, ref, by, "add-path", func(tx pgx.Tx, schema, name string) (string, error) {
		ps, pn, pk, err := pathParent(ctx, tx, quoteQualified(schema, name), via, parent, parentKey)
		if err != nil {
			return "", err
		}
		var kind string
		err = tx.QueryRow(ctx, "SELECT kind FROM tenantproxy.tables WHERE schema_name = $1 AND table_name = $2", ps, pn).Scan(&kind)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && kind == string(Global)) {
			return "", fmt.Errorf("the parent %s must be catalogued as tenant-bound or path-bound first: tenantproxy catalog add-table %s --tenant-column <column>",
				quoteQualified(ps, pn), quoteQualified(ps, pn))
		}
		if err != nil {
			return "", err
		}
		return upsert(ctx, tx, Table{Schema: schema, Name: name, Kind: PathBound, Parent: ps + "." + pn, Via: via, ParentKey: pk}, by)
	})
}

// pathParent finds the table and column that table.via references: the
// given parent, or the one single-column foreign key on via.
func pathParent(ctx context.Context, tx pgx.Tx, table, via string, parent TableRef, parentKey string) (string, string, string, error) {
	if !hasColumn(ctx, tx, table, via) {
		return "", "", "", fmt.Errorf("table %s has no column %q", table, via)
	}
	if parent.Name != "" {
		if parentKey == "" {
			return "", "", "", errors.New("--parent needs --parent-key: the parent's column that --via references")
		}
		ps, pn, err := resolve(ctx, tx, parent, false)
		if err != nil {
			return "", "", "", err
		}
		if !hasColumn(ctx, tx, quoteQualified(ps, pn), parentKey) {
			return "", "", "", fmt.Errorf("table %s has no column %q", quoteQualified(ps, pn), parentKey)
		}
		return ps, pn, parentKey, nil
	}
	rows, err := tx.Query(ctx, `SELECT pn.nspname, pc.relname, pa.attname
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		JOIN pg_class pc ON pc.oid = c.confrelid
		JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
		WHERE c.contype = 'f' AND c.conrelid = to_regclass($1) AND cardinality(c.conkey) = 1 AND a.attname = $2
		ORDER BY 1, 2, 3`, table, via)
	if err != nil {
		return "", "", "", err
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var f [3]string
		return f, r.Scan(&f[0], &f[1], &f[2])
	})
	switch {
	case err != nil:
		return "", "", "", err
	case len(found) == 0:
		return "", "", "", fmt.Errorf("%s.%s has no single-column foreign key; name the parent with --parent TABLE --parent-key COLUMN", table, via)
	case len(found) > 1:
		return "", "", "", fmt.Errorf("%s.%s has %d foreign keys; choose one with --parent TABLE --parent-key COLUMN", table, via, len(found))
	}
	return found[0][0], found[0][1], found[0][2], nil
}

func hasColumn(ctx context.Context, tx pgx.Tx, table, column string) bool {
	var has bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`,
		table, column).Scan(&has)
	return err == nil && has
}

// Allow lets tenants call a function or read a system relation beyond the
// built-in lists. kind is "function" (name, or schema.name for one outside
// pg_catalog) or "relation" (pg_catalog.name or information_schema.name).
// Relations the proxy knows to hold other tenants' data stay refused.
func Allow(ctx context.Context, conn *pgx.Conn, kind, name, by string) (string, error) {
	parts, err := SplitName(name)
	if err != nil {
		return "", err
	}
	switch {
	case kind == "function" && len(parts) <= 2:
	case kind == "relation" && len(parts) == 2 && (parts[0] == "pg_catalog" || parts[0] == "information_schema"):
	case kind == "relation":
		return "", fmt.Errorf("%q: allow-relation takes a system relation as pg_catalog.name or information_schema.name; catalogue other tables with add-table or add-global", name)
	default:
		return "", fmt.Errorf("%q: give a function as name or schema.name", name)
	}
	if kind == "function" && len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	key := strings.Join(parts, ".")
	return transact(ctx, conn, by, "allow-"+kind, map[string]any{"name": key}, func(tx pgx.Tx) (string, error) {
		_, err := tx.Exec(ctx, "INSERT INTO tenantproxy.allowed (kind, name, added_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", kind, key, by)
		return fmt.Sprintf("allowed %s %s", kind, key), err
	})
}

// AddGlobal catalogues a table every tenant may read (and write, if writable).
func AddGlobal(ctx context.Context, conn *pgx.Conn, ref TableRef, writable bool, by string) (string, error) {
	return change(ctx, conn, ref, by, "add-global", func(tx pgx.Tx, schema, name string) (string, error) {
		msg, err := upsert(ctx, tx, Table{Schema: schema, Name: name, Kind: Global, Writable: writable}, by)
		if err != nil {
			return "", err
		}
		var view bool
		if err := tx.QueryRow(ctx, "SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = to_regclass($1)",
			quoteQualified(schema, name)).Scan(&view); err != nil {
			return "", err
		}
		if view {
			msg += " (note: it is a view; every tenant sees all the rows it returns, whichever tables it reads)"
		}
		return msg, nil
	})
}

// Remove takes a table out of the catalog: tenants can no longer reach it.
func Remove(ctx context.Context, conn *pgx.Conn, ref TableRef, by string) (string, error) {
	return change(ctx, conn, ref, by, "remove", func(tx pgx.Tx, schema, name string) (string, error) {
		tag, err := tx.Exec(ctx, "DELETE FROM tenantproxy.tables WHERE schema_name = $1 AND table_name = $2", schema, name)
		if err != nil {
			return "", err
		}
		if tag.RowsAffected() == 0 {
			return "", fmt.Errorf("table %s is not in the catalog", quoteQualified(schema, name))
		}
		return "removed " + quoteQualified(schema, name), nil
	})
}

func upsert(ctx context.Context, tx pgx.Tx, t Table, by string) (string, error) {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var parentSchema, parentTable any
	if ps, pt, ok := strings.Cut(t.Parent, "."); ok {
		parentSchema, parentTable = ps, pt
	}
	var inserted bool
	err := tx.QueryRow(ctx, `INSERT INTO tenantproxy.tables (schema_name, table_name, kind, tenant_column, claim, writable, added_by,
		  parent_schema, parent_table, via_column, parent_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (schema_name, table_name) DO UPDATE SET kind = excluded.kind, tenant_column = excluded.tenant_column,
		  claim = excluded.claim, writable = excluded.writable, added_at = now(), added_by = excluded.added_by,
		  parent_schema = excluded.parent_schema, parent_table = excluded.parent_table,
		  via_column = excluded.via_column, parent_key = excluded.parent_key
		RETURNING xmax = 0`, t.Schema, t.Name, string(t.Kind), null(t.TenantColumn), t.Claim, t.Writable, by,
		parentSchema, parentTable, null(t.Via), null(t.ParentKey)).Scan(&inserted)
	if err != nil {
		return "", err
	}
	if t.Kind != TenantBound {
		if _, err := tx.Exec(ctx, "DELETE FROM tenantproxy.bindings WHERE schema_name = $1 AND table_name = $2", t.Schema, t.Name); err != nil {
			return "", err
		}
	}
	what := "added"
	if !inserted {
		what = "updated (it was already catalogued)"
	}
	desc := "tenant-bound on " + t.TenantColumn
	if t.Kind == PathBound {
		desc = fmt.Sprintf("path-bound: %s references %s.%s", t.Via, t.Parent, t.ParentKey)
	}
	if t.Kind == Global {
		desc = "global, read-only"
		if t.Writable {
			desc = "global, writable"
		}
	}
	return fmt.Sprintf("%s %s: %s", what, quoteQualified(t.Schema, t.Name), desc), nil
}

// change runs one change of a table's catalog entry: resolve the table,
// then apply it (see transact).
func change(ctx context.Context, conn *pgx.Conn, ref TableRef, by, action string, apply func(tx pgx.Tx, schema, name string) (string, error)) (string, error) {
	var schema, name string
	detail := map[string]any{}
	return transact(ctx, conn, by, action, detail, func(tx pgx.Tx) (string, error) {
		var err error
		schema, name, err = resolve(ctx, tx, ref, action == "remove")
		if err != nil {
			return "", err
		}
		if action != "remove" {
			if err := catalogueable(schema); err != nil {
				return "", err
			}
		}
		detail["schema"], detail["table"] = schema, name
		return apply(tx, schema, name)
	})
}

// transact runs one catalog change in a transaction: apply it, check that
// the catalog is still valid, bump the version, log the change and NOTIFY
// every proxy.
func transact(ctx context.Context, conn *pgx.Conn, by, action string, detail map[string]any, apply func(tx pgx.Tx) (string, error)) (string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	if err := checkReady(ctx, tx); err != nil {
		return "", err
	}
	msg, err := apply(tx)
	if err != nil {
		return "", err
	}
	tables, err := listTables(ctx, tx)
	if err != nil {
		return "", err
	}
	if _, err := NewSnapshot(0, tables); err != nil {
		return "", fmt.Errorf("the change would leave the catalog invalid: %w", err)
	}
	var version int64
	if err := tx.QueryRow(ctx, "UPDATE tenantproxy.version SET version = version + 1 RETURNING version").Scan(&version); err != nil {
		return "", err
	}
	detail["version"], detail["result"] = version, msg
	if _, err := tx.Exec(ctx, "INSERT INTO tenantproxy.changes (by, action, detail) VALUES ($1, $2, $3)", by, action, detail); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, strconv.FormatInt(version, 10)); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (catalog version %d)", msg, version), nil
}

// resolve turns a TableRef into the schema and name of an existing table (or,
// for removal, of a catalogued one).
func resolve(ctx context.Context, tx pgx.Tx, ref TableRef, catalogued bool) (string, string, error) {
	parts, err := SplitName(ref.Name)
	if err != nil {
		return "", "", err
	}
	candidates := [][2]string{}
	switch len(parts) {
	case 1:
		path := ref.SearchPath
		if len(path) == 0 {
			path = []string{"public"}
		}
		for _, s := range path {
			candidates = append(candidates, [2]string{s, parts[0]})
		}
	case 2:
		candidates = append(candidates, [2]string{parts[0], parts[1]})
	default:
		return "", "", fmt.Errorf("%q: give a table as name or schema.name", ref.Name)
	}
	for _, c := range candidates {
		var found bool
		q := `SELECT EXISTS (SELECT 1 FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
			WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind IN ('r', 'p', 'v', 'm', 'f'))`
		if catalogued {
			q = `SELECT EXISTS (SELECT 1 FROM tenantproxy.tables WHERE schema_name = $1 AND table_name = $2)`
		}
		if err := tx.QueryRow(ctx, q, c[0], c[1]).Scan(&found); err != nil {
			return "", "", err
		}
		if found {
			return c[0], c[1], nil
		}
	}
	if catalogued {
		return "", "", fmt.Errorf("table %q is not in the catalog", ref.Name)
	}
	return "", "", fmt.Errorf("table %q does not exist (searched schemas %s)", ref.Name, strings.Join(searched(candidates), ", "))
}

// catalogueable refuses schemas whose tables must never be reachable as
// tenant data: Postgres's own (pg_*, information_schema) and the catalog's.
func catalogueable(schema string) error {
	switch {
	case schema == "tenantproxy":
		return errors.New("tables in schema tenantproxy hold the tenant catalog itself and cannot be catalogued")
	case schema == "information_schema" || strings.HasPrefix(schema, "pg_"):
		return fmt.Errorf("tables in schema %s belong to Postgres and cannot be catalogued", pgx.Identifier{schema}.Sanitize())
	}
	return nil
}

func searched(c [][2]string) []string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = x[0]
	}
	return out
}

// SplitName splits a possibly qualified, possibly quoted SQL name the way
// Postgres reads it: unquoted parts are folded to lower case (ASCII only, as
// Postgres does for UTF-8) and must be plain identifiers; "" inside quotes
// is a quote.
func SplitName(s string) ([]string, error) {
	invalid := func() error {
		return fmt.Errorf("%q is not a valid table name; write it as name or schema.name, quoting parts that need it (\"My Table\")", s)
	}
	var parts []string
	var cur strings.Builder
	quoted, inQuotes, started := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuotes && c == '"' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case inQuotes && c == '"':
			inQuotes = false
		case inQuotes:
			cur.WriteByte(c)
		case c == '"':
			if started {
				return nil, invalid()
			}
			inQuotes, quoted, started = true, true, true
		case c == '.':
			if !started || (quoted && cur.Len() == 0) {
				return nil, invalid()
			}
			parts = append(parts, cur.String())
			cur.Reset()
			quoted, started = false, false
		case quoted || !identChar(c, !started):
			return nil, invalid()
		default:
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			cur.WriteByte(c)
			started = true
		}
	}
	if inQuotes || !started || (quoted && cur.Len() == 0) {
		return nil, invalid()
	}
	return append(parts, cur.String()), nil
}

// identChar reports whether c may appear in an unquoted identifier (first:
// at its start).
func identChar(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c >= 0x80:
		return true
	case '0' <= c && c <= '9', c == '$':
		return !first
	}
	return false
}

// quoteQualified quotes schema.name for SQL and messages.
func quoteQualified(schema, name string) string {
	return pgx.Identifier{schema, name}.Sanitize()
}

// IsNotInitialised reports an uninitialised catalog.
func IsNotInitialised(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, ErrNotInitialised) || (errors.As(err, &pgErr) && pgErr.Code == "3F000")
}
