package leakproof_test

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/rewrite/leakproof"
)

// FuzzScan: any statement the parser accepts is scanned without a panic,
// with and without typed parameters.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM accounts WHERE id = $1 AND name ~ name",
		"WITH x AS (SELECT * FROM notes) SELECT * FROM x JOIN replies r ON r.note_id = x.id WHERE r.body::int = 1",
		"UPDATE accounts a SET name = lower(a.name) FROM notes n WHERE n.account_id = a.id AND n.title LIKE 'x%' RETURNING *",
		"MERGE INTO accounts a USING (SELECT * FROM notes) n ON a.id = n.account_id WHEN MATCHED AND a.name = 'x' THEN DELETE",
		"INSERT INTO accounts (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE accounts.score > 1",
		"SELECT (SELECT max(id) FROM notes), count(*) FILTER (WHERE id > 1) OVER (PARTITION BY name) FROM accounts LEFT JOIN LATERAL (SELECT 1) l ON true",
		"PREPARE p(int, text[]) AS SELECT * FROM accounts WHERE id = $1 AND name = ANY($2)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		tree, err := pg.Parse(sql)
		if err != nil {
			return
		}
		for _, st := range tree.GetStmts() {
			leakproof.Scan(st.GetStmt(), leakproof.Options{Env: testEnv})
			leakproof.Scan(st.GetStmt(), leakproof.Options{Env: testEnv, UntypedParams: true})
		}
	})
}
