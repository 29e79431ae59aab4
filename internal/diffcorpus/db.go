package diffcorpus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// DB is one database of the differential, reached directly as a
// superuser: the shared one (every tenant's rows) or a tenant's own.
type DB struct {
	// DSN connects to the database as a superuser.
	DSN string
	// Conn is a direct connection to the database.
	Conn *pgconn.PgConn
	// Only is the tenant whose rows the database holds; "" for the shared
	// database, which holds every tenant's.
	Only string
}

// NewDB creates a database on the test server (internal/pgtest) holding
// the corpus: every tenant's rows when only is "", else only's. The
// connection is closed and the database dropped when the test ends.
func NewDB(t testing.TB, only string) DB {
	t.Helper()
	d := DB{DSN: pgtest.NewDatabase(t), Only: only}
	d.Conn = Connect(t, d.DSN)
	if err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// Connect opens a connection to dsn that is closed when the test ends.
func Connect(t testing.TB, dsn string) *pgconn.PgConn {
	t.Helper()
	conn, err := pgconn.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Create makes the corpus schema in an empty database, with the tenant's
// defaults in a tenant's own, and loads the rows.
func (d DB) Create(ctx context.Context) error {
	ddl := Schema
	if d.Only != "" {
		ddl += SoloDefaults(d.Only)
	}
	if err := exec(ctx, d.Conn, ddl); err != nil {
		return fmt.Errorf("corpus schema: %w", err)
	}
	return d.Load(ctx)
}

// Load empties every corpus table, inserts the rows the database holds and
// sets the order sequence to SequenceStart: after it the database is as
// Create left it.
func (d DB) Load(ctx context.Context) error {
	var b strings.Builder
	names := []string{"public.secrets"}
	for _, t := range Tables() {
		names = append(names, catalog.QuoteName(t.Schema, t.Name))
	}
	fmt.Fprintf(&b, "TRUNCATE %s;\n", strings.Join(names, ", "))
	for _, r := range Rows {
		if d.Only == "" || r.Tenant == "" || r.Tenant == d.Only {
			fmt.Fprintf(&b, "INSERT INTO %s VALUES %s;\n", r.Table, r.Values)
		}
	}
	fmt.Fprintf(&b, "SELECT setval('public.orders_id_seq', %d);", SequenceStart)
	if err := exec(ctx, d.Conn, b.String()); err != nil {
		return fmt.Errorf("corpus rows: %w", err)
	}
	return nil
}

// Dump returns, sorted, every row of the catalogued tables that the tenant
// sees (mine, global rows included) or does not see (!mine) as text
// prefixed with its table. A tenant's own database holds only its rows:
// there, mine is everything and !mine nothing.
func (d DB) Dump(ctx context.Context, tenant string, mine bool) ([]string, error) {
	var queries []string
	for _, t := range Tables() {
		cond := "true"
		switch {
		case d.Only != "" && !mine, t.Kind == catalog.Global && !mine:
			continue
		case d.Only == "" && t.Bound() && mine:
			cond = owned(t, "x", tenant)
		case d.Only == "" && t.Bound():
			cond = fmt.Sprintf("(%s) IS NOT TRUE", owned(t, "x", tenant))
		}
		queries = append(queries, fmt.Sprintf("SELECT %s || ' ' || %s FROM %s x WHERE %s",
			quoteLiteral(t.QualifiedName()), rowText(t, "x"), catalog.QuoteName(t.Schema, t.Name), cond))
	}
	rs, err := d.Conn.Exec(ctx, strings.Join(queries, ";\n")).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	var out []string
	for _, r := range rs {
		for _, row := range r.Rows {
			out = append(out, string(row[0]))
		}
	}
	slices.Sort(out)
	return out, nil
}

// owned is the SQL condition under which row alias of table t belongs to
// tenant: every bound column holds the tenant's claim value, or (path-
// bound) the parent row the via column references belongs to it.
func owned(t catalog.Table, alias, tenant string) string {
	if t.Kind == catalog.PathBound {
		parent := tableNamed(t.Parent)
		p := alias + "p"
		return fmt.Sprintf("EXISTS (SELECT 1 FROM %s %s WHERE %s.%s = %s.%s AND %s)",
			catalog.QuoteName(parent.Schema, parent.Name), p, p, catalog.QuoteName(t.ParentKey), alias, catalog.QuoteName(t.Via), owned(parent, p, tenant))
	}
	claims := Claims(tenant)
	var conds []string
	for _, b := range t.Bindings {
		conds = append(conds, fmt.Sprintf("%s.%s::text = %s", alias, catalog.QuoteName(b.Column), quoteLiteral(claims[b.Claim][0])))
	}
	return strings.Join(conds, " AND ")
}

// tableNamed returns the corpus table called schema.name.
func tableNamed(qualified string) catalog.Table {
	for _, t := range Tables() {
		if t.QualifiedName() == qualified {
			return t
		}
	}
	panic("diffcorpus: no table " + qualified)
}

// rowText is a row's text. An order whose id came from the sequence shows
// "new" instead: ids follow the order in which rows are produced, which a
// GROUP BY or a set operation does not fix.
func rowText(t catalog.Table, alias string) string {
	if t.QualifiedName() != "public.orders" {
		return alias + "::text"
	}
	var rest []string
	for _, c := range t.Columns[1:] {
		rest = append(rest, alias+"."+catalog.QuoteName(c.Name))
	}
	return fmt.Sprintf("CASE WHEN %[1]s.id > %[2]d THEN 'new' ELSE %[1]s.id::text END || ' ' || row(%[3]s)::text",
		alias, SequenceStart, strings.Join(rest, ", "))
}

// exec runs a string of statements with the simple protocol.
func exec(ctx context.Context, conn *pgconn.PgConn, sql string) error {
	_, err := conn.Exec(ctx, sql).ReadAll()
	return err
}
