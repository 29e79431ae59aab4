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

// Load reads the catalog into a validated snapshot, with each table's live
// columns.
func Load(ctx context.Context, conn *pgx.Conn) (*Snapshot, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if err := checkReady(ctx, tx); err != nil {
		return nil, err
	}
	var version int64
	if err := tx.QueryRow(ctx, "SELECT version FROM tenantproxy.version").Scan(&version); err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	for i := range tables {
		t := &tables[i]
		rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
			FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum`, quoteQualified(t.Schema, t.Name))
		if err != nil {
			return nil, err
		}
		t.Columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
			var c Column
			return c, r.Scan(&c.Name, &c.Type)
		})
		if err != nil {
			return nil, err
		}
		if len(t.Columns) == 0 {
			return nil, fmt.Errorf("catalogued table %s no longer exists; remove it with: tenantproxy catalog remove %s", t.QualifiedName(), t.QualifiedName())
		}
	}
	return NewSnapshot(version, tables)
}

func listTables(ctx context.Context, tx pgx.Tx) ([]Table, error) {
	rows, err := tx.Query(ctx, `SELECT schema_name, table_name, kind, coalesce(tenant_column, ''), claim, writable
		FROM tenantproxy.tables ORDER BY schema_name, table_name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		var kind string
		err := r.Scan(&t.Schema, &t.Name, &kind, &t.TenantColumn, &t.Claim, &t.Writable)
		t.Kind = Kind(kind)
		return t, err
	})
}

// List returns the catalogued tables (without columns) and the version.
func List(ctx context.Context, conn *pgx.Conn) ([]Table, int64, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(ctx)
	if err := checkReady(ctx, tx); err != nil {
		return nil, 0, err
	}
	var version int64
	if err := tx.QueryRow(ctx, "SELECT version FROM tenantproxy.version").Scan(&version); err != nil {
		return nil, 0, err
	}
	tables, err := listTables(ctx, tx)
	return tables, version, err
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
		return upsert(ctx, tx, Table{Schema: schema, Name: name, Kind: TenantBound, TenantColumn: tenantColumn, Claim: claim}, by)
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
	var col any
	if t.TenantColumn != "" {
		col = t.TenantColumn
	}
	var inserted bool
	err := tx.QueryRow(ctx, `INSERT INTO tenantproxy.tables (schema_name, table_name, kind, tenant_column, claim, writable, added_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (schema_name, table_name) DO UPDATE SET kind = excluded.kind, tenant_column = excluded.tenant_column,
		  claim = excluded.claim, writable = excluded.writable, added_at = now(), added_by = excluded.added_by
		RETURNING xmax = 0`, t.Schema, t.Name, string(t.Kind), col, t.Claim, t.Writable, by).Scan(&inserted)
	if err != nil {
		return "", err
	}
	what := "added"
	if !inserted {
		what = "updated (it was already catalogued)"
	}
	desc := "tenant-bound on " + t.TenantColumn
	if t.Kind == Global {
		desc = "global, read-only"
		if t.Writable {
			desc = "global, writable"
		}
	}
	return fmt.Sprintf("%s %s: %s", what, quoteQualified(t.Schema, t.Name), desc), nil
}

// change runs one catalog change in a transaction: resolve the table, apply,
// bump the version, log it and NOTIFY.
func change(ctx context.Context, conn *pgx.Conn, ref TableRef, by, action string, apply func(tx pgx.Tx, schema, name string) (string, error)) (string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	if err := checkReady(ctx, tx); err != nil {
		return "", err
	}
	schema, name, err := resolve(ctx, tx, ref, action == "remove")
	if err != nil {
		return "", err
	}
	if action != "remove" {
		if err := catalogueable(schema); err != nil {
			return "", err
		}
	}
	msg, err := apply(tx, schema, name)
	if err != nil {
		return "", err
	}
	var version int64
	if err := tx.QueryRow(ctx, "UPDATE tenantproxy.version SET version = version + 1 RETURNING version").Scan(&version); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tenantproxy.changes (by, action, detail) VALUES ($1, $2, jsonb_build_object('schema', $3::text, 'table', $4::text, 'version', $5::bigint, 'result', $6::text))",
		by, action, schema, name, version, msg); err != nil {
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
