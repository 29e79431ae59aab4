package leakproof_test

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
)

type env map[string]leakproof.Table

func (e env) Table(rv *pg.RangeVar) (leakproof.Table, bool) {
	t, ok := e[rv.GetRelname()]
	return t, ok
}

var testEnv = env{
	"accounts": {Bound: true, Columns: map[string]string{"id": "integer", "tenant_id": "integer", "name": "text", "email": "character varying(255)", "created_at": "timestamp with time zone", "score": "numeric", "data": "jsonb", "active": "boolean"}},
	"replies":  {Bound: true, Columns: map[string]string{"id": "bigint", "note_id": "integer", "body": "text", "created_at": "timestamp with time zone"}},
	"notes":    {Bound: true, Columns: map[string]string{"id": "integer", "tenant_id": "integer", "title": "text", "account_id": "integer"}},
	"plans":    {Columns: map[string]string{"id": "integer", "name": "text"}},
}

func scan(t *testing.T, sql string) *leakproof.Report {
	t.Helper()
	tree, err := pg.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	return leakproof.Scan(tree.GetStmts()[0].GetStmt(), leakproof.Options{Env: testEnv})
}

func TestLeaky(t *testing.T) {
	cases := []struct {
		sql   string
		leaky bool
	}{
		{"SELECT * FROM accounts WHERE id = $1", false},
		{"SELECT * FROM accounts WHERE email = 'x'", false},
		{"SELECT * FROM accounts WHERE id > 5 AND id <= 10 AND created_at >= '2024-01-01'", false},
		{"SELECT * FROM accounts WHERE id BETWEEN $1 AND $2 OR name IN ('a', 'b')", false},
		{"SELECT * FROM accounts WHERE created_at > now() AND created_at < CURRENT_TIMESTAMP", false},
		{"SELECT * FROM accounts WHERE id = ANY($1) AND active AND name IS NOT NULL", false},
		{"SELECT * FROM accounts a JOIN notes n ON n.account_id = a.id WHERE n.title = $1", false},
		{"SELECT count(*), max(name) FROM accounts WHERE id = 9999999999", false},
		{"SELECT * FROM replies WHERE note_id IN (SELECT id FROM notes WHERE title = 'x')", false},
		{"SELECT * FROM replies WHERE EXISTS (SELECT 1 FROM notes n WHERE n.id = replies.note_id)", false},
		{"SELECT id FROM accounts ORDER BY name LIMIT 10", false},
		{"SELECT * FROM replies WHERE body::int = 11", true},
		{"SELECT count(*) FROM replies WHERE 1/(length(body)-7) = 0", true},
		{"SELECT * FROM accounts WHERE name ~ name", true},
		{"SELECT * FROM accounts WHERE id = 1.5", false},
		{"SELECT * FROM accounts WHERE score = 1", true},
		{"SELECT * FROM accounts WHERE created_at > '2024-01-01'::date", true},
		{"SELECT * FROM accounts WHERE email = $1::regclass", true},
		{"SELECT * FROM accounts WHERE data->>'x' = 'y'", true},
		{"SELECT lower(name) FROM accounts WHERE id = 1", true},
		{"SELECT * FROM notes n LEFT JOIN replies r ON r.note_id = n.id AND r.body::int = 11", true},
		{"WITH x AS (SELECT * FROM accounts) SELECT * FROM x WHERE x.id = 1", true}, // x's columns are unknown: not typed
		{"UPDATE accounts SET name = name WHERE name ~ name", true},
		{"UPDATE accounts SET name = upper(name) WHERE id = $1", true},
		{"DELETE FROM replies WHERE id = $1", false},
		{"SELECT * FROM accounts WHERE id = (SELECT 1/0)", true},
		{"SELECT * FROM accounts WHERE name LIKE 'a%'", true},
	}
	for _, c := range cases {
		if got := scan(t, c.sql).Leaky; got != c.leaky {
			t.Errorf("%s: leaky = %v, want %v", c.sql, got, c.leaky)
		}
	}
}

func TestConjunctTables(t *testing.T) {
	sql := "SELECT * FROM accounts a LEFT JOIN notes n ON n.account_id = a.id AND n.title = 'x' AND a.id = 3 WHERE a.name = $1 AND n.id = 4 AND lower(a.name) = 'x'"
	rep := scan(t, sql)
	got := map[string]string{}
	for n, c := range rep.Conjuncts {
		out := deparseExpr(t, n)
		tbl := ""
		if c.Table != nil {
			tbl = c.Table.GetAlias().GetAliasname()
		}
		got[out] = tbl
		_ = c.Safe
	}
	want := map[string]string{
		"n.account_id = a.id": "", "n.title = 'x'": "n", "a.id = 3": "",
		"a.name = $1": "a", "n.id = 4": "", "lower(a.name) = 'x'": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: table %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func deparseExpr(t *testing.T, n *pg.Node) string {
	t.Helper()
	sel := &pg.SelectStmt{TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(n, 0)}}
	out, err := pg.Deparse(&pg.ParseResult{Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out[len("SELECT "):]
}
