package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// corpusSchema is the differential schema, in schema shop (the proxy runs
// with --search-path shop,public). Ids are unique across tenants (tenant t
// owns t01..t99); some rows point at other tenants' rows.
const corpusSchema = `
CREATE SCHEMA shop;
CREATE TABLE shop.plans (id int PRIMARY KEY, name text);
CREATE TABLE shop.settings (name text PRIMARY KEY, value text);
CREATE TABLE shop.customers (id int PRIMARY KEY, tenant_id int NOT NULL, name text, plan_id int);
CREATE TABLE shop.orders (id serial PRIMARY KEY, tenant_id int NOT NULL, customer_id int, total numeric, note text);
CREATE TABLE shop.order_items (id int PRIMARY KEY, tenant_id int NOT NULL, order_id int, qty int);
CREATE TABLE shop.notes (id int PRIMARY KEY, order_id int REFERENCES shop.orders, body text);
CREATE TABLE shop.docs (id int PRIMARY KEY, tenant_id int NOT NULL, author text NOT NULL, title text);
CREATE TABLE shop."Mixed Case" (id int PRIMARY KEY, tenant_id int NOT NULL, "Label" text);
`

// corpusRow is one INSERT of the corpus data; tenant "" is global.
type corpusRow struct{ table, tenant, values string }

var corpusRows = []corpusRow{
	{"shop.plans", "", "(1, 'free'), (2, 'pro'), (3, 'unused')"},
	{"shop.settings", "", "('theme', 'dark'), ('x', NULL)"},
	{"shop.customers", "2", "(201, 2, 'ann', 1), (202, 2, 'dee', 3)"},
	{"shop.customers", "1", "(101, 1, 'ann', 1), (102, 1, 'bob', 2), (103, 1, 'cy', NULL)"},
	{"shop.customers", "3", "(301, 3, 'eve', 2)"},
	{"shop.orders", "2", "(201, 2, 201, 50, 'theirs'), (202, 2, 101, 7, NULL)"},
	{"shop.orders", "1", "(101, 1, 101, 10, 'a'), (102, 1, 101, 5.5, NULL), (103, 1, 102, 7, 'c'), (104, 1, 201, 3, 'points at tenant 2'), (105, 1, NULL, 0, '')"},
	{"shop.orders", "3", "(301, 3, 301, 10, 'a')"},
	{"shop.order_items", "1", "(101, 1, 101, 2), (102, 1, 101, 1), (103, 1, 202, 9)"},
	{"shop.order_items", "2", "(201, 2, 201, 4), (202, 2, 101, 8)"},
	{"shop.notes", "1", "(101, 101, 'n1'), (102, 103, 'n2')"},
	{"shop.notes", "2", "(201, 201, 'n3')"},
	{"shop.notes", "3", "(301, 301, 'n4')"},
	{"shop.notes", "-", "(999, NULL, 'orphan')"},
	{"shop.docs", "1", "(101, 1, 'ann', 'mine')"},
	{"shop.docs", "-", "(102, 1, 'bob', 'colleague')"},
	{"shop.docs", "2", "(201, 2, 'ann', 't2 ann')"},
	{"shop.docs", "3", "(301, 3, 'ann', 't3 ann')"},
	{"shop.\"Mixed Case\"", "1", "(101, 1, 'one')"},
	{"shop.\"Mixed Case\"", "2", "(201, 2, 'two')"},
}

// corpusOwner gives, per table, the SQL expression for a row x's tenant
// ("" for nobody's), as the session with sub "ann" sees it.
var corpusOwner = []struct{ table, owner string }{
	{"shop.plans", "'global'"}, {"shop.settings", "'global'"},
	{"shop.customers", "x.tenant_id::text"}, {"shop.orders", "x.tenant_id::text"},
	{"shop.order_items", "x.tenant_id::text"},
	{"shop.notes", "(SELECT o.tenant_id::text FROM shop.orders o WHERE o.id = x.order_id)"},
	{"shop.docs", "CASE WHEN x.author = 'ann' THEN x.tenant_id::text END"},
	{"shop.\"Mixed Case\"", "x.tenant_id::text"},
}

var corpusTenants = []string{"1", "2", "3"}

// corpusDB is one database of the differential: the shared one (every
// tenant, reached through the proxy) or a tenant's own.
type corpusDB struct {
	direct *pgx.Conn
	only   string // the tenant whose rows it holds, "" for all
}

// load empties and refills the tables and resets the order sequence.
func (d corpusDB) load(ctx context.Context) error {
	var b strings.Builder
	b.WriteString(`TRUNCATE shop.plans, shop.settings, shop.customers, shop.orders, shop.order_items, shop.notes, shop.docs, shop."Mixed Case";`)
	for _, r := range corpusRows {
		if d.only == "" || r.tenant == "" || r.tenant == d.only {
			fmt.Fprintf(&b, "INSERT INTO %s VALUES %s;", r.table, r.values)
		}
	}
	b.WriteString("SELECT setval('shop.orders_id_seq', 1000);")
	_, err := d.direct.Exec(ctx, b.String())
	return err
}

// rows dumps the rows whose owner is (mine) or is not (!mine) tenant; a
// tenant's own database holds only its rows, so there mine is everything.
func (d corpusDB) rows(ctx context.Context, tenant string, mine bool) ([]string, error) {
	var out []string
	for _, t := range corpusOwner {
		cond := "true"
		switch {
		case d.only != "" && !mine:
			continue
		case d.only == "" && mine:
			cond = fmt.Sprintf("coalesce(%s, '') IN ('%s', 'global')", t.owner, tenant)
		case d.only == "":
			cond = fmt.Sprintf("coalesce(%s, '') NOT IN ('%s', 'global')", t.owner, tenant)
		}
		row := "x::text"
		if t.table == "shop.orders" {
			// Ids from the sequence follow the order in which rows are
			// produced, which GROUP BY or a set operation does not fix.
			row = "CASE WHEN x.id > 1000 THEN 'new' ELSE x.id::text END || ' ' || row(x.tenant_id, x.customer_id, x.total, x.note)::text"
		}
		got, err := textRows(ctx, d.direct.PgConn(), fmt.Sprintf("SELECT '%s ' || %s FROM %s x WHERE %s", t.table, row, t.table, cond))
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	sort.Strings(out)
	return out, nil
}

// corpusEnv is the proxy on the shared database and one database per tenant.
type corpusEnv struct {
	e      *env
	shared corpusDB
	own    map[string]corpusDB
}

func newCorpusEnv(t *testing.T) *corpusEnv {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	c := &corpusEnv{e: e, shared: corpusDB{direct: e.direct(t)}, own: map[string]corpusDB{}}
	if _, err := c.shared.direct.Exec(ctx, corpusSchema); err != nil {
		t.Fatal(err)
	}
	if err := c.shared.load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"add-global", "shop.plans"}, {"add-global", "shop.settings", "--writable"},
		{"add-table", "shop.customers", "--tenant-column", "tenant_id"},
		{"add-table", "shop.orders", "--tenant-column", "tenant_id"},
		{"add-table", "shop.order_items", "--tenant-column", "tenant_id"},
		{"add-path", "shop.notes", "--via", "order_id"},
		{"add-table", "shop.docs", "--tenant-column", "tenant_id"},
		{"add-table", "shop.docs", "--tenant-column", "author", "--claim", "sub"},
		{"add-table", `shop."Mixed Case"`, "--tenant-column", "tenant_id"},
	} {
		e.cli(t, append([]string{"catalog"}, args...)...)
	}
	e.start(t, "", "--search-path", "shop,public")
	for _, tenant := range corpusTenants {
		conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		db := corpusDB{direct: conn, only: tenant}
		// In a database of its own, a tenant's rows get its tenant (and
		// the author its sub) without naming them, as the proxy fills them.
		setup := corpusSchema + fmt.Sprintf(`
			ALTER TABLE shop.customers ALTER tenant_id SET DEFAULT %[1]s;
			ALTER TABLE shop.orders ALTER tenant_id SET DEFAULT %[1]s;
			ALTER TABLE shop.order_items ALTER tenant_id SET DEFAULT %[1]s;
			ALTER TABLE shop.docs ALTER tenant_id SET DEFAULT %[1]s, ALTER author SET DEFAULT 'ann';
			ALTER TABLE shop."Mixed Case" ALTER tenant_id SET DEFAULT %[1]s;
			SET search_path = shop, public;`, tenant)
		if _, err := conn.Exec(ctx, setup); err != nil {
			t.Fatal(err)
		}
		if err := db.load(ctx); err != nil {
			t.Fatal(err)
		}
		c.own[tenant] = db
	}
	return c
}

// proxyConn connects through the proxy as tenant with sub "ann".
func (c *corpusEnv) proxyConn(t *testing.T, tenant string) *pgx.Conn {
	t.Helper()
	tok, err := auth.Mint(c.e.secret, auth.MintOptions{Tenants: []string{tenant}, Subject: "ann", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), c.e.connString(tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// corpusOutcome is what a statement string returned: each result's columns
// and sorted rows (or the copied lines), or its SQLSTATE.
type corpusOutcome struct {
	results []string
	code    string
	message string
}

func (o corpusOutcome) failed() bool { return o.code != "" }

func runCorpus(ctx context.Context, conn *pgconn.PgConn, s corpusStmt) corpusOutcome {
	if s.copyOut {
		var buf bytes.Buffer
		if _, err := conn.CopyTo(ctx, &buf, s.sql); err != nil {
			return errOutcome(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		sort.Strings(lines)
		return corpusOutcome{results: lines}
	}
	rs, err := conn.Exec(ctx, s.sql).ReadAll()
	if err != nil {
		return errOutcome(err)
	}
	return corpusOutcome{results: pgtest.ResultTexts(rs)}
}

func errOutcome(err error) corpusOutcome {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return corpusOutcome{code: pe.Code, message: pe.Message}
	}
	return corpusOutcome{code: "client", message: err.Error()}
}

// TestDifferentialCorpus is the isolation promise, measured: every corpus
// statement runs, for each of three tenants, through the proxy on the
// shared database and directly on a database holding only that tenant's
// rows. Accepted reads return the same results; accepted writes leave the
// tenant's rows the same on both and every other tenant's rows untouched;
// refused statements come back as 42501 with nothing changed, and the
// session carries on.
func TestDifferentialCorpus(t *testing.T) {
	c := newCorpusEnv(t)
	ctx := context.Background()
	type tally struct{ accepted, refused int }
	counts := map[string]*tally{}
	statements := 0
	for _, tenant := range corpusTenants {
		conn := c.proxyConn(t, tenant).PgConn()
		own := c.own[tenant]
		for _, s := range corpus {
			if len(s.tenants) > 0 && !slices.Contains(s.tenants, tenant) {
				continue
			}
			statements++
			if counts[s.cat] == nil {
				counts[s.cat] = &tally{}
			}
			if err := c.check(ctx, conn, own, tenant, s); err != nil {
				t.Errorf("tenant %s, %s: %s\n%v", tenant, s.cat, s.sql, err)
			}
			if s.refused {
				counts[s.cat].refused++
			} else {
				counts[s.cat].accepted++
			}
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "category\taccepted\trefused\t")
	cats := make([]string, 0, len(counts))
	total := tally{}
	for k := range counts {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	for _, k := range cats {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", k, counts[k].accepted, counts[k].refused)
		total.accepted += counts[k].accepted
		total.refused += counts[k].refused
	}
	fmt.Fprintf(tw, "total (%d statements, %d runs over 3 tenants)\t%d\t%d\t\n", len(corpus), statements, total.accepted, total.refused)
	tw.Flush()
	if os.Getenv("TENANTPROXY_CORPUS_REPORT") != "" {
		fmt.Print("differential corpus, runs (statement x tenant) per category:\n" + b.String())
	} else {
		t.Logf("differential corpus, runs (statement x tenant) per category:\n%s", b.String())
	}
	if len(corpus) < 200 {
		t.Errorf("the corpus has %d statements; the differential promise needs at least 200", len(corpus))
	}
}

// check runs one statement for one tenant and compares.
func (c *corpusEnv) check(ctx context.Context, conn *pgconn.PgConn, own corpusDB, tenant string, s corpusStmt) error {
	mutates := s.write || s.refused
	var othersBefore []string
	if mutates {
		var err error
		if othersBefore, err = c.shared.rows(ctx, tenant, false); err != nil {
			return err
		}
		defer func() {
			_ = c.shared.load(ctx)
			_ = own.load(ctx)
		}()
	}
	got := runCorpus(ctx, conn, s)
	if s.refused {
		if got.code != "42501" || !strings.HasPrefix(got.message, "tenantproxy: ") {
			return fmt.Errorf("want a tenantproxy refusal, got %+v", got)
		}
		if err := conn.Exec(ctx, "SELECT 1").Close(); err != nil {
			return fmt.Errorf("session unusable after the refusal: %v", err)
		}
	} else if s.noDiff {
		if got.failed() {
			return fmt.Errorf("refused or failed: %s %s", got.code, got.message)
		}
		return nil
	}
	if mutates {
		after, err := c.shared.rows(ctx, tenant, false)
		if err != nil {
			return err
		}
		if !slices.Equal(othersBefore, after) {
			return fmt.Errorf("other tenants' rows changed:\nbefore %v\nafter  %v", othersBefore, after)
		}
	}
	if s.refused {
		mine, err := c.shared.rows(ctx, tenant, true)
		if err != nil {
			return err
		}
		if _, err := c.shared.direct.Exec(ctx, "SELECT 1"); err != nil {
			return err
		}
		return c.sameRows(ctx, own, tenant, mine, "after the refusal")
	}
	want := runCorpus(ctx, own.direct.PgConn(), s)
	if got.code == "42501" && strings.HasPrefix(got.message, "tenantproxy: ") && !want.failed() {
		return fmt.Errorf("refused through the proxy (%s), but it runs on the tenant's own database", got.message)
	}
	switch {
	case s.write && got.failed() && want.failed():
		// Failing on both leaves the same rows (checked below); the
		// reasons may differ (a guard on the shared database, a foreign
		// key on the tenant's own).
	case got.code != want.code || !slices.Equal(got.results, want.results):
		return fmt.Errorf("through the proxy: %+v\nown database:      %+v", got, want)
	}
	if !s.write {
		return nil
	}
	mine, err := c.shared.rows(ctx, tenant, true)
	if err != nil {
		return err
	}
	return c.sameRows(ctx, own, tenant, mine, "after the write")
}

// sameRows compares the tenant's rows on the shared database with its own.
func (c *corpusEnv) sameRows(ctx context.Context, own corpusDB, tenant string, shared []string, when string) error {
	ownRows, err := own.rows(ctx, tenant, true)
	if err != nil {
		return err
	}
	if !slices.Equal(shared, ownRows) {
		return fmt.Errorf("%s, the tenant's rows differ:\nshared %v\nown    %v", when, shared, ownRows)
	}
	return nil
}
