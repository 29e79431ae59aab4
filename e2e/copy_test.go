package e2e_test

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"
	"strings"
	"testing"
)

// TestCopyFromIntoTenantTables: COPY ... FROM STDIN into a tenant-bound
// table takes the tenant's rows (the tenant column filled when left out,
// checked when sent, in text and CSV, rows split across messages), and a
// single row of another tenant refuses the whole COPY with nothing written.
func TestCopyFromIntoTenantTables(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.connect(t, "1").PgConn()
	direct := e.direct(t)
	count := func(cond string) string {
		return column(t, direct, "SELECT count(*) FROM orders WHERE "+cond)[0]
	}

	var rows strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&rows, "%d\t%d.5\tnote \\t%d\n", 1+i%2, i, i)
	}
	tag, err := one.CopyFrom(ctx, strings.NewReader(rows.String()), "COPY orders (customer_id, total, note) FROM STDIN")
	if err != nil || tag.RowsAffected() != 20000 {
		t.Fatalf("text copy with the tenant filled: %v %v", tag, err)
	}
	if got := count("tenant_id = 1 AND note LIKE 'note \t%'"); got != "20000" {
		t.Fatalf("%s rows of tenant 1 with the unescaped note", got)
	}

	csv := "1,1,3,\"quoted, with a \"\"comma\"\"\nand a newline\"\r\n1,2,4,\r\n"
	if _, err := one.CopyFrom(ctx, strings.NewReader(csv), "COPY orders (tenant_id, customer_id, total, note) FROM STDIN (FORMAT csv)"); err != nil {
		t.Fatalf("csv copy naming the own tenant: %v", err)
	}
	if got := count(`note = E'quoted, with a "comma"\nand a newline'`); got != "1" {
		t.Fatalf("quoted csv field arrived %s times", got)
	}

	before := count("true")
	for name, c := range map[string]struct{ sql, data, why string }{
		"another tenant, csv":  {"COPY orders (tenant_id, customer_id, total) FROM STDIN (FORMAT csv)", "1,1,1\n1,1,2\n2,3,9\n", `row 3 names tenant "2"`},
		"another tenant, text": {"COPY orders (customer_id, tenant_id, total) FROM STDIN", "1\t1\t1\n3\t3\t9\n", `row 2 names tenant "3"`},
		"NULL tenant":          {"COPY orders (tenant_id, total) FROM STDIN", "\\N\t1\n", "to NULL"},
		"extra field":          {"COPY orders (customer_id, total) FROM STDIN", "1\t2\t2\n", "has 3 fields"},
		"escaped delimiter":    {"COPY orders (tenant_id, total) FROM STDIN", "1\\\t2\t5\n", `names tenant "1\t2"`},
	} {
		_, err := one.CopyFrom(ctx, strings.NewReader(c.data), c.sql)
		pe := wantState(t, err, "42501")
		if !strings.Contains(pe.Message, c.why) || !strings.HasPrefix(pe.Message, "tenantproxy: ") {
			t.Errorf("%s: %s", name, pe.Message)
		}
		if got := count("true"); got != before {
			t.Fatalf("%s: rows went from %s to %s", name, before, got)
		}
		if res := one.Exec(ctx, "SELECT 1"); res.Close() != nil {
			t.Fatalf("%s: session unusable after the refusal", name)
		}
	}
}

// TestBinaryCopyFromWithPgx: pgx's CopyFrom (binary format) works through
// the proxy, filling the tenant column, and a row of another tenant is
// refused with nothing written.
func TestBinaryCopyFromWithPgx(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.connect(t, "1")
	direct := e.direct(t)
	rows := [][]any{}
	for i := 0; i < 5000; i++ {
		rows = append(rows, []any{1 + i%2, float64(i)})
	}
	n, err := one.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"customer_id", "total"}, pgx.CopyFromRows(rows))
	if err != nil || n != 5000 {
		t.Fatalf("binary copy: %d, %v", n, err)
	}
	wantRows(t, column(t, direct, "SELECT count(*) FROM orders WHERE tenant_id = 1 AND id > 100"), "5000")
	before := column(t, direct, "SELECT count(*) FROM orders")[0]
	_, err = one.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"tenant_id", "customer_id", "total"},
		pgx.CopyFromRows([][]any{{1, 1, 1.0}, {2, 3, 2.0}}))
	if pe := wantState(t, err, "42501"); !strings.Contains(pe.Message, `row 2 names tenant "2"`) {
		t.Fatalf("refusal: %s", pe.Message)
	}
	wantRows(t, column(t, direct, "SELECT count(*) FROM orders"), before)
	wantRows(t, column(t, one, "SELECT count(*) FROM customers"), "2")
}
