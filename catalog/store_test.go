package catalog_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `
		CREATE TABLE orders (id int, tenant_id int, note text);
		ALTER TABLE orders DROP COLUMN note;
		ALTER TABLE orders ADD COLUMN total numeric(10,2);
		CREATE SCHEMA "My Schema";
		CREATE TABLE "My Schema"."Accounts" (id uuid, org_id text);
		CREATE TABLE plans (id int);`); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestInitIsIdempotentAndLoadNeedsIt(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if _, err := catalog.Load(ctx, conn); !errors.Is(err, catalog.ErrNotInitialised) || !strings.Contains(err.Error(), "tenantproxy catalog init") {
		t.Fatalf("Load before init: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := catalog.Init(ctx, conn); err != nil {
			t.Fatalf("init #%d: %v", i+1, err)
		}
	}
	snap, err := catalog.Load(ctx, conn)
	if err != nil || snap.Version() != 1 || len(snap.Tables()) != 0 {
		t.Fatalf("empty catalog: %v %v", snap, err)
	}
}

func TestAddListRemoveAndLoad(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	ref := func(name string) catalog.TableRef {
		return catalog.TableRef{Name: name, SearchPath: []string{"public"}}
	}
	if _, err := catalog.AddTable(ctx, conn, ref("orders"), "tenant_id", "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddTable(ctx, conn, ref(`"My Schema"."Accounts"`), "org_id", "org", "test"); err != nil {
		t.Fatal(err)
	}
	msg, err := catalog.AddGlobal(ctx, conn, ref("PLANS"), false, "test")
	if err != nil || !strings.Contains(msg, "version 4") {
		t.Fatalf("%q %v", msg, err)
	}
	msg, err = catalog.AddGlobal(ctx, conn, ref("plans"), true, "test")
	if err != nil || !strings.Contains(msg, "already catalogued") {
		t.Fatalf("re-adding: %q %v", msg, err)
	}
	for _, bad := range []struct{ name, col, says string }{
		{"missing", "tenant_id", "does not exist"},
		{"orders", "nope", `no column "nope"`},
		{"orders", "note", `no column "note"`}, // dropped
		{`"unterminated`, "x", "not a valid table name"},
	} {
		if _, err := catalog.AddTable(ctx, conn, ref(bad.name), bad.col, "", "test"); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("AddTable(%s, %s): %v, want %q", bad.name, bad.col, err, bad.says)
		}
	}
	tables, version, err := catalog.List(ctx, conn)
	if err != nil || version != 5 || len(tables) != 3 {
		t.Fatalf("list: %v %d %v", tables, version, err)
	}
	snap, err := catalog.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	orders, ok := snap.Lookup("public", "orders")
	if !ok || orders.TenantColumn != "tenant_id" || len(orders.Columns) != 3 || orders.Columns[2] != (catalog.Column{Name: "total", Type: "numeric(10,2)"}) {
		t.Fatalf("orders: %+v", orders)
	}
	acc, ok := snap.Lookup("My Schema", "Accounts")
	if !ok || acc.Claim != "org" || acc.Columns[0].Type != "uuid" {
		t.Fatalf("accounts: %+v", acc)
	}
	if p, _ := snap.Lookup("public", "plans"); !p.Writable {
		t.Fatal("plans should be writable after the update")
	}
	if _, err := catalog.Remove(ctx, conn, ref("plans"), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Remove(ctx, conn, ref("plans"), "test"); err == nil {
		t.Fatal("removing twice succeeded")
	}
	var changes int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM tenantproxy.changes").Scan(&changes); err != nil || changes != 5 {
		t.Fatalf("%d changes logged: %v", changes, err)
	}
}

func TestEveryChangeNotifies(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	listener, err := pgx.Connect(ctx, conn.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+catalog.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddGlobal(ctx, conn, catalog.TableRef{Name: "plans"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Payload != "2" {
		t.Fatalf("notification %+v %v", n, err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO tenantproxy.schema_migrations (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"init": catalog.Init(ctx, conn),
		"load": func() error { _, err := catalog.Load(ctx, conn); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "upgrade tenantproxy") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadRefusesADroppedTable(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: "orders"}, "tenant_id", "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DROP TABLE orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Load(ctx, conn); err == nil || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("%v", err)
	}
}

func TestSplitName(t *testing.T) {
	cases := map[string][]string{
		"orders":          {"orders"},
		"App.Orders":      {"app", "orders"},
		`"My Schema"."T"`: {"My Schema", "T"},
		`"a""b"`:          {`a"b`},
		`"x.y"`:           {"x.y"},
		"Café.TÂBLE_2$":   {"café", "tÂble_2$"}, // Postgres folds ASCII only
		`_x."Y"`:          {"_x", "Y"},
	}
	for in, want := range cases {
		got, err := catalog.SplitName(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("SplitName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", `"a`, `"a"b`, `a"b"`, `""`, `"a".""`, "a b", "1abc", "$a", "a;b", "a-b"} {
		if _, err := catalog.SplitName(bad); err == nil || !strings.Contains(err.Error(), "not a valid table name") {
			t.Errorf("SplitName(%q): %v", bad, err)
		}
	}
}

func TestUnqualifiedNamesFollowTheSearchPath(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE SCHEMA app; CREATE TABLE app.orders (tenant_id int); CREATE TABLE "Café" (tenant_id int)`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		path       []string
		wantSchema string
	}{
		{"orders", []string{"app", "public"}, "app"},
		{"orders", []string{"public", "app"}, "public"},
		{"orders", []string{"nosuch", "public"}, "public"},
		{`"Café"`, nil, "public"}, // no search path means public
	}
	for _, c := range cases {
		if _, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: c.name, SearchPath: c.path}, "tenant_id", "", "test"); err != nil {
			t.Fatalf("%s with %v: %v", c.name, c.path, err)
		}
		tables, _, err := catalog.List(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tb := range tables {
			found = found || tb.Schema == c.wantSchema && tb.Name == strings.Trim(c.name, `"`)
		}
		if !found {
			t.Errorf("%s with %v: not catalogued in %s: %+v", c.name, c.path, c.wantSchema, tables)
		}
	}
	_, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: "orders", SearchPath: []string{"nosuch"}}, "tenant_id", "", "test")
	if err == nil || !strings.Contains(err.Error(), "searched schemas nosuch") {
		t.Errorf("missing from the search path: %v", err)
	}
}

func TestSystemAndCatalogTablesCannotBeCatalogued(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tenantproxy.tables", "tenantproxy.version", "pg_catalog.pg_authid", "information_schema.sql_features", "pg_class"} {
		ref := catalog.TableRef{Name: name, SearchPath: []string{"pg_catalog"}}
		if _, err := catalog.AddGlobal(ctx, conn, ref, true, "test"); err == nil || !strings.Contains(err.Error(), "cannot be catalogued") {
			t.Errorf("AddGlobal(%s): %v", name, err)
		}
	}
	if _, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: "tenantproxy.changes"}, "by", "", "test"); err == nil || !strings.Contains(err.Error(), "cannot be catalogued") {
		t.Errorf("AddTable(tenantproxy.changes): %v", err)
	}
	if _, v, _ := catalog.List(ctx, conn); v != 1 {
		t.Errorf("refused changes bumped the version to %d", v)
	}
}

func TestGlobalViewsAreFlagged(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE VIEW all_orders AS SELECT * FROM orders"); err != nil {
		t.Fatal(err)
	}
	msg, err := catalog.AddGlobal(ctx, conn, catalog.TableRef{Name: "all_orders"}, false, "test")
	if err != nil || !strings.Contains(msg, "it is a view") {
		t.Fatalf("%q %v", msg, err)
	}
	msg, err = catalog.AddGlobal(ctx, conn, catalog.TableRef{Name: "plans"}, false, "test")
	if err != nil || strings.Contains(msg, "view") {
		t.Fatalf("%q %v", msg, err)
	}
}

func TestEveryOperationNeedsInit(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	ref := catalog.TableRef{Name: "orders"}
	for name, err := range map[string]error{
		"list":       func() error { _, _, err := catalog.List(ctx, conn); return err }(),
		"add-table":  func() error { _, err := catalog.AddTable(ctx, conn, ref, "tenant_id", "", "t"); return err }(),
		"add-global": func() error { _, err := catalog.AddGlobal(ctx, conn, ref, false, "t"); return err }(),
		"remove":     func() error { _, err := catalog.Remove(ctx, conn, ref, "t"); return err }(),
	} {
		if !catalog.IsNotInitialised(err) || !strings.Contains(err.Error(), "run: tenantproxy catalog init") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadRefusesADroppedTenantColumn(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if err := catalog.Init(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddTable(ctx, conn, catalog.TableRef{Name: "orders"}, "tenant_id", "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER TABLE orders DROP COLUMN tenant_id"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.Load(ctx, conn); err == nil || !strings.Contains(err.Error(), `no column "tenant_id"`) {
		t.Fatalf("%v", err)
	}
}
