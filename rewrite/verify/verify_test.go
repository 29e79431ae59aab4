package verify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// testSnapshot is the fixed catalog every case runs against.
var testSnapshot = catalog.MustSnapshot(1,
	catalog.Table{Schema: "public", Name: "orders", Kind: catalog.TenantBound, TenantColumn: "tenant_id",
		Columns: cols("id", "tenant_id", "customer_id", "total")},
	catalog.Table{Schema: "public", Name: "customers", Kind: catalog.TenantBound, TenantColumn: "tenant_id",
		Columns: cols("id", "tenant_id", "name")},
	catalog.Table{Schema: "public", Name: "plans", Kind: catalog.Global, Columns: cols("id", "name")},
	catalog.Table{Schema: "public", Name: "settings", Kind: catalog.Global, Writable: true},
	catalog.Table{Schema: "app", Name: "accounts", Kind: catalog.TenantBound, TenantColumn: "org_id", Claim: "org",
		Columns: cols("id", "org_id", "email")},
	catalog.Table{Schema: "public", Name: "sites", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id")},
	catalog.Table{Schema: "public", Name: "posts", Kind: catalog.PathBound, Parent: "public.sites", Via: "site_id", ParentKey: "id",
		Columns: cols("id", "site_id", "title")},
	catalog.Table{Schema: "public", Name: "documents", Kind: catalog.TenantBound, Columns: cols("id", "org_id", "author_id"),
		Bindings: []catalog.Binding{{Column: "org_id"}, {Column: "author_id", Claim: "org"}}},
)

// Path-bound and multi-dimension shapes.
const (
	sitesOf42 = `(SELECT sites.id FROM public.sites WHERE sites.tenant_id = '42')`
	guard     = `(SELECT CASE WHEN g.v IN ` + sitesOf42 + ` THEN g.v ELSE (SELECT NULL::int WHERE (SELECT 'x'::text)::int IS NULL) END FROM (SELECT 5::int AS v) g)`
)

func cols(names ...string) []catalog.Column {
	out := make([]catalog.Column, len(names))
	for i, n := range names {
		typ := "integer"
		switch n {
		case "name", "email", "title":
			typ = "text"
		}
		out[i] = catalog.Column{Name: n, Type: typ}
	}
	return out
}

// policy is tenant 42 on the primary claim and org 7 on the "org" claim.
func policy() verify.Policy {
	return verify.Policy{
		Tenants:    map[string][]string{"": {"42"}, "org": {"7"}},
		SearchPath: []string{"public"},
		Snapshot:   testSnapshot,
	}
}

// multiPolicy may see tenants 42 and 43.
func multiPolicy() verify.Policy {
	p := policy()
	p.Tenants = map[string][]string{"": {"42", "43"}, "org": {"7"}}
	return p
}

// Scoped derived tables as the rewriter emits them.
const (
	ord  = `(SELECT * FROM public.orders WHERE orders.tenant_id = '42') AS o`
	cust = `(SELECT * FROM public.customers WHERE customers.tenant_id = '42') AS c`
	// Fenced, as the rewriter emits them when a statement holds an
	// expression that is not leakproof.
	ordF  = `(SELECT * FROM public.orders WHERE orders.tenant_id = '42' OFFSET 0) AS o`
	custF = `(SELECT * FROM public.customers WHERE customers.tenant_id = '42' OFFSET 0) AS c`
)

type tcase struct {
	name   string
	sql    string
	policy func() verify.Policy // nil: policy()
	// reject, when not empty, is a substring the error must contain; empty
	// means the statement must be accepted.
	reject string
	// minServer is the server_version_num the statement needs, if any.
	minServer int
}

var accepted = []tcase{
	{name: "barrier: guarded UPDATE", sql: `UPDATE public.customers SET name = name WHERE customers.tenant_id = '42' AND CASE WHEN customers.tenant_id = '42' THEN name ~ name END`},
	{name: "barrier: fenced read with a moved condition", sql: `SELECT * FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42' AND customers.id = $1 OFFSET 0) AS c WHERE c.name ~ c.name`},
	{name: "barrier: fenced path-bound read", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN ` + sitesOf42 + ` OFFSET 0) p WHERE p.title::int = 11`},
	{name: "barrier: guarded path-bound DELETE", sql: `DELETE FROM public.posts WHERE posts.site_id IN ` + sitesOf42 + ` AND CASE WHEN posts.site_id IN ` + sitesOf42 + ` THEN title::int = 99 END`},
	{name: "barrier: leakproof conditions unfenced", sql: `SELECT * FROM ` + cust + ` WHERE c.id = $1 AND c.name IN ('a', 'b') AND c.id BETWEEN 1 AND 5`},
	{name: "path read", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN ` + sitesOf42 + `) p`},
	{name: "path update", sql: `UPDATE public.posts SET title = 'x' WHERE posts.site_id IN ` + sitesOf42},
	{name: "path guarded insert", sql: `INSERT INTO public.posts (id, site_id) VALUES (1, ` + guard + `)`},
	{name: "path guarded update", sql: `UPDATE public.posts SET site_id = ` + guard + ` WHERE posts.site_id IN ` + sitesOf42},
	{name: "two bindings", sql: `SELECT * FROM (SELECT * FROM public.documents WHERE documents.org_id = '42' AND documents.author_id = '7') d`},
	{name: "driver type query", sql: `SELECT t.oid, t.typname, format_type(t.oid, NULL) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = 'public.orders'::regclass::oid OR t.typname = 'int4'`},
	{name: "information_schema columns", sql: `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'`},
	{name: "pg_statistic_ext definitions", sql: `SELECT stxname FROM pg_catalog.pg_statistic_ext`},
	{name: "metadata functions", sql: `SELECT pg_catalog.pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid), pg_catalog.pg_table_is_visible(i.indrelid) FROM pg_catalog.pg_index i, pg_catalog.pg_constraint c`},
	{name: "merge", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' AND o.id = p.id WHEN MATCHED AND o.total > 1 THEN UPDATE SET total = 0 WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT (id, tenant_id) VALUES (p.id, '42')`},
	{name: "merge from a scoped source", sql: `MERGE INTO public.orders t USING ` + ord + ` ON t.tenant_id = '42' AND o.id = t.id WHEN MATCHED THEN DELETE`},
	{name: "explain costs off", sql: `EXPLAIN (COSTS OFF) SELECT * FROM ` + ord},
	{name: "explain verbose json", sql: `EXPLAIN (VERBOSE, FORMAT JSON, COSTS false) UPDATE public.orders SET total = 1 WHERE orders.tenant_id = '42'`},
	{name: "explain analyze off", sql: `EXPLAIN (ANALYZE off, COSTS OFF) SELECT 1`},
	{name: "prepare execute deallocate", sql: `PREPARE p(int) AS SELECT * FROM ` + ord + ` WHERE id = $1; EXECUTE p(1); DEALLOCATE p`},
	{name: "prepare insert with own tenant", sql: `PREPARE p(int) AS INSERT INTO public.orders (id, tenant_id) VALUES ($1, '42'); DEALLOCATE p`},
	{name: "cursor", sql: `DECLARE c CURSOR FOR SELECT * FROM ` + ord + `; FETCH 2 FROM c; MOVE 1 IN c; CLOSE c`},
	{name: "copy scoped query", sql: `COPY (SELECT id FROM ` + ord + `) TO STDOUT (FORMAT csv)`},
	{name: "copy global table", sql: `COPY public.plans TO STDOUT`},
	{name: "copy from stdin into writable global", sql: `COPY public.settings FROM STDIN`},
	{name: "copy from stdin into a tenant table naming its column", sql: `COPY public.orders (id, tenant_id) FROM STDIN`},
	{name: "derived table", sql: `SELECT * FROM ` + ord},
	{name: "derived table bare column", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE tenant_id = '42') AS o`},
	{name: "derived table three-part column", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE public.orders.tenant_id = '42') AS o`},
	{name: "integer tenant constant", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = 42) AS o`},
	{name: "constant on the left", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE '42' = orders.tenant_id) AS o`},
	{name: "pg_catalog equals", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id OPERATOR(pg_catalog.=) '42') AS o`},
	{name: "predicate among conjuncts", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.total > 5 AND (orders.id < 9 AND orders.tenant_id = '42')) AS o`},
	{name: "aliased inner table", sql: `SELECT * FROM (SELECT * FROM public.orders AS x WHERE x.tenant_id = '42') AS o`},
	{name: "unqualified table via search_path", sql: `SELECT * FROM (SELECT * FROM orders WHERE orders.tenant_id = '42') AS o`},
	{name: "inner join", sql: `SELECT o.id, c.name FROM ` + ord + ` JOIN ` + cust + ` ON c.id = o.customer_id`},
	{name: "left join", sql: `SELECT * FROM ` + ord + ` LEFT JOIN ` + cust + ` ON c.id = o.customer_id`},
	{name: "right join", sql: `SELECT * FROM ` + ord + ` RIGHT OUTER JOIN ` + cust + ` ON c.id = o.customer_id`},
	{name: "full join", sql: `SELECT * FROM ` + ord + ` FULL JOIN ` + cust + ` ON c.id = o.customer_id`},
	{name: "cross join", sql: `SELECT * FROM ` + ord + ` CROSS JOIN ` + cust},
	{name: "natural join", sql: `SELECT * FROM ` + ord + ` NATURAL JOIN ` + cust},
	{name: "using join with alias", sql: `SELECT * FROM ` + ord + ` JOIN ` + cust + ` USING (tenant_id) AS j`},
	{name: "aliased join of derived tables", sql: `SELECT * FROM (` + ord + ` JOIN ` + cust + ` ON true) AS j`},
	{name: "join with global table", sql: `SELECT * FROM public.plans p LEFT JOIN ` + ord + ` ON o.id = p.id`},
	{name: "comma join of raw tables with WHERE predicates",
		sql: `SELECT * FROM public.orders o, public.customers c WHERE o.tenant_id = '42' AND c.tenant_id = '42' AND c.id = o.customer_id`},
	{name: "raw tables in join with top-level WHERE predicates",
		sql: `SELECT * FROM public.orders o LEFT JOIN public.customers c ON c.id = o.customer_id WHERE o.tenant_id = '42' AND c.tenant_id = '42'`},
	{name: "subquery in WHERE", sql: `SELECT * FROM public.plans p WHERE EXISTS (SELECT 1 FROM ` + ord + ` WHERE o.id = p.id)`},
	{name: "IN subquery", sql: `SELECT * FROM ` + cust + ` WHERE c.id IN (SELECT o.customer_id FROM ` + ord + `)`},
	{name: "subquery in select list", sql: `SELECT (SELECT count(*) FROM ` + ord + ` WHERE o.customer_id = c.id) FROM ` + cust},
	{name: "subquery in HAVING", sql: `SELECT c.name FROM ` + cust + ` GROUP BY c.name HAVING count(*) > (SELECT count(*) FROM ` + ord + `)`},
	{name: "lateral subquery", sql: `SELECT * FROM ` + cust + `, LATERAL (SELECT * FROM ` + ord + ` WHERE o.customer_id = c.id LIMIT 1) AS l`},
	{name: "lateral function, fenced", sql: `SELECT * FROM ` + ordF + `, LATERAL generate_series(1, o.total) AS g`},
	{name: "function column definition list", sql: `SELECT * FROM json_to_record('{"a":1}') AS x(a int, b text COLLATE "C")`},
	{name: "json constructors, fenced", sql: `SELECT JSON_OBJECT('a' VALUE c.id), JSON_ARRAY(SELECT o.id FROM ` + ordF + `), c.name IS JSON FROM ` + custF, minServer: 160000},
	{name: "quantified subquery", sql: `SELECT * FROM ` + cust + ` WHERE c.id = ANY (SELECT o.customer_id FROM ` + ord + `)`},
	{name: "nested derived table", sql: `SELECT * FROM (SELECT * FROM ` + ord + ` WHERE o.total > 1) AS outer_o`},
	{name: "union", sql: `SELECT id FROM ` + ord + ` UNION ALL SELECT id FROM ` + cust},
	{name: "values", sql: `SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y)`},
	{name: "cte", sql: `WITH x AS (SELECT * FROM ` + ord + `) SELECT * FROM x`},
	{name: "cte shadowing table name", sql: `WITH orders AS (SELECT * FROM public.orders WHERE orders.tenant_id = '42') SELECT * FROM orders`},
	{name: "cte chain", sql: `WITH a AS (SELECT * FROM ` + ord + `), b AS (SELECT * FROM a) SELECT * FROM b, a`},
	{name: "recursive cte", sql: `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT * FROM t`},
	{name: "recursive cte sees later sibling",
		sql: `WITH RECURSIVE x AS (SELECT * FROM orders), orders AS (SELECT * FROM public.plans) SELECT * FROM x`},
	{name: "recursive cte over tenant table, fenced",
		sql: `WITH RECURSIVE t AS (SELECT o.id, o.customer_id FROM ` + ordF + ` UNION ALL SELECT t.id, o.customer_id FROM t JOIN ` + ordF + ` ON o.id = t.customer_id) SELECT * FROM t`},
	{name: "outer cte visible in subquery", sql: `WITH x AS (SELECT * FROM ` + ord + `) SELECT * FROM public.plans WHERE EXISTS (SELECT 1 FROM x)`},
	{name: "nested with", sql: `WITH x AS (SELECT * FROM ` + ord + `) SELECT * FROM (WITH y AS (SELECT * FROM x) SELECT * FROM y) AS z`},
	{name: "cte search and cycle clauses",
		sql: `WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SEARCH DEPTH FIRST BY n SET ord CYCLE n SET is_cycle USING path SELECT * FROM t`},
	{name: "data-modifying cte", sql: `WITH d AS (DELETE FROM public.orders WHERE orders.tenant_id = '42' RETURNING *) SELECT * FROM d`},
	{name: "for update", sql: `SELECT * FROM ` + ord + ` FOR UPDATE OF o SKIP LOCKED`},
	{name: "global table", sql: `SELECT * FROM public.plans`},
	{name: "global table via search_path", sql: `SELECT name FROM plans WHERE id = 1`},
	{name: "other claim", sql: `SELECT * FROM (SELECT * FROM app.accounts WHERE accounts.org_id = '7') AS a`},
	{name: "several tenants IN", policy: multiPolicy, sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id IN ('42', '43')) AS o`},
	{name: "several tenants single value", policy: multiPolicy, sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '43') AS o`},
	{name: "functions and expressions, fenced",
		sql: `SELECT lower(c.name), coalesce(c.name, 'x'), CASE WHEN c.id > 1 THEN 1 ELSE 0 END, c.id::text, now(), current_user, ` +
			`greatest(1, 2), (ARRAY[1, 2])[1], row_number() OVER (PARTITION BY c.name ORDER BY c.id), count(*) FILTER (WHERE c.id > 1), ` +
			`c.name IS NULL, c.id BETWEEN 1 AND 2, c.name LIKE 'a%', json_build_object('a', c.id), pg_catalog.upper(c.name) ` +
			`FROM ` + custF + ` GROUP BY GROUPING SETS ((c.name), (c.id)) ORDER BY 1 LIMIT 10 OFFSET 2`},
	{name: "update with predicate", sql: `UPDATE public.orders SET total = 1 WHERE orders.tenant_id = '42'`},
	{name: "update with alias", sql: `UPDATE public.orders AS o SET total = o.total + 1 WHERE o.id = 3 AND o.tenant_id = '42' RETURNING o.id`},
	{name: "update bare column", sql: `UPDATE public.orders SET total = 1 WHERE tenant_id = '42'`},
	{name: "update from derived table",
		sql: `UPDATE public.orders SET total = c.id FROM ` + cust + ` WHERE c.id = orders.customer_id AND orders.tenant_id = '42'`},
	{name: "update sets tenant constant", sql: `UPDATE public.orders SET tenant_id = '42', total = 2 WHERE orders.tenant_id = '42'`},
	{name: "update sets tenant param", sql: `UPDATE public.orders SET tenant_id = $1 WHERE orders.tenant_id = '42'`},
	{name: "update with subquery", sql: `UPDATE public.orders SET total = (SELECT count(*) FROM ` + cust + `) WHERE orders.tenant_id = '42'`},
	{name: "update multi-assign, fenced", sql: `UPDATE public.orders SET (total, customer_id) = (SELECT 1, c.id FROM ` + custF + ` LIMIT 1) WHERE orders.tenant_id = '42'`},
	{name: "delete with predicate", sql: `DELETE FROM public.orders WHERE orders.tenant_id = '42' AND orders.id = 1`},
	{name: "delete using derived table", sql: `DELETE FROM public.orders o USING ` + cust + ` WHERE o.customer_id = c.id AND o.tenant_id = '42'`},
	{name: "insert values constant", sql: `INSERT INTO public.orders (id, tenant_id, total) VALUES (1, '42', 10)`},
	{name: "insert values integer constant", sql: `INSERT INTO public.orders (tenant_id, id) VALUES (42, 1)`},
	{name: "insert values param", sql: `INSERT INTO public.orders (id, tenant_id) VALUES ($1, $2), (3, '42')`},
	{name: "insert select constant", sql: `INSERT INTO public.orders (id, tenant_id) SELECT c.id, '42' FROM ` + cust},
	{name: "insert select star then tenant last",
		sql: `INSERT INTO public.orders (id, customer_id, tenant_id) SELECT *, '42' FROM (SELECT c.id, c.id FROM ` + cust + `) AS x`},
	{name: "insert select tenant first then star",
		sql: `INSERT INTO public.orders (tenant_id, id, customer_id) SELECT '42', x.* FROM (SELECT c.id, c.id FROM ` + cust + `) AS x`},
	{name: "insert select star counted from end",
		sql: `INSERT INTO public.orders (id, tenant_id, customer_id) SELECT *, '42', 1 FROM (SELECT 1) AS x`},
	{name: "insert returning", sql: `INSERT INTO public.orders AS o (id, tenant_id) VALUES (1, '42') RETURNING o.id`},
	{name: "insert on conflict do nothing", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42') ON CONFLICT DO NOTHING`},
	{name: "insert on conflict do update",
		sql: `INSERT INTO public.orders (id, tenant_id, total) VALUES (1, '42', 5) ON CONFLICT (id) DO UPDATE SET total = excluded.total WHERE orders.tenant_id = '42'`},
	{name: "insert on conflict do update with alias",
		sql: `INSERT INTO public.orders AS o (id, tenant_id) VALUES (1, '42') ON CONFLICT ON CONSTRAINT orders_pkey DO UPDATE SET total = 1 WHERE o.tenant_id = '42' AND o.total < 3`},
	{name: "insert several tenants", policy: multiPolicy, sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42'), (2, '43')`},
	{name: "insert with cte", sql: `WITH x AS (SELECT * FROM ` + cust + `) INSERT INTO public.orders (id, tenant_id) SELECT x.id, '42' FROM x`},
	{name: "insert other claim", sql: `INSERT INTO app.accounts (id, org_id) VALUES (1, '7')`},
	{name: "writable global insert", sql: `INSERT INTO public.settings (k, v) VALUES ('a', 'b')`},
	{name: "writable global update", sql: `UPDATE public.settings SET v = 'c'`},
	{name: "writable global delete", sql: `DELETE FROM settings`},
	{name: "transaction control", sql: `BEGIN ISOLATION LEVEL SERIALIZABLE; SAVEPOINT s; ROLLBACK TO SAVEPOINT s; COMMIT`},
	{name: "set and show", sql: `SET statement_timeout = '5s'; SHOW statement_timeout; SET TIME ZONE 'UTC'`},
	{name: "several statements", sql: `BEGIN; SELECT * FROM ` + ord + `; COMMIT`},
	{name: "empty", sql: ``},

	// Channels of tenant 42: "tp" + the first 16 hex digits of
	// sha256("42") + "_" (printf 42 | sha256sum).
	{name: "listen in the channel space", sql: `LISTEN tp73475cb40a568e8d_orders`},
	{name: "listen quoted", sql: `LISTEN "tp73475cb40a568e8d_Orders"`},
	{name: "listen of 63 bytes", sql: `LISTEN tp73475cb40a568e8d_` + strings.Repeat("c", 44)},
	{name: "unlisten in the channel space", sql: `UNLISTEN tp73475cb40a568e8d_orders`},
	{name: "unlisten all", sql: `UNLISTEN *`},
	{name: "unlisten all with several tenants", policy: multiPolicy, sql: `UNLISTEN *`},
	{name: "notify in the channel space", sql: `NOTIFY tp73475cb40a568e8d_orders, 'x'`},
	{name: "pg_notify constant", sql: `SELECT pg_notify('tp73475cb40a568e8d_orders', 'x')`},
	{name: "pg_notify qualified", sql: `SELECT pg_catalog.pg_notify('tp73475cb40a568e8d_orders', 'x')`},
	{name: "pg_notify prefixed expression, fenced", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || c.name::text, 'x') FROM ` + custF},
	{name: "pg_notify prefixed expression cast to pg_catalog.text", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || CAST('a' || 1 AS pg_catalog.text), 'x')`},
	{name: "pg_notify with a scoped payload, fenced", sql: `SELECT pg_notify('tp73475cb40a568e8d_t', (SELECT count(*)::text FROM ` + ordF + `))`},
}

var rejected = []tcase{
	// The security barrier: an expression that is not leakproof may never
	// meet a row the tenant filter rejects.
	{name: "barrier: regex over an unfenced table", sql: `SELECT * FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42') AS c WHERE c.name ~ c.name`, reject: "without a fence"},
	{name: "barrier: regex inside the fence", sql: `SELECT * FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42' AND customers.name ~ customers.name OFFSET 0) AS c`, reject: "holds a condition that is not leakproof"},
	{name: "barrier: fence with a sort", sql: `SELECT * FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42' ORDER BY lower(name) OFFSET 0) AS c`, reject: "computes more than its filter"},
	{name: "barrier: fence naming a column list", sql: `SELECT lower(c.name) FROM (SELECT name FROM public.customers WHERE customers.tenant_id = '42' OFFSET 0) AS c`, reject: "does not select *"},
	{name: "barrier: cast over a path-bound table", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN ` + sitesOf42 + `) p WHERE p.title::int = 11`, reject: "without a fence"},
	{name: "barrier: client condition carried in a parent sub-link", sql: `SELECT lower(p.title) FROM (SELECT * FROM public.posts WHERE posts.site_id IN (SELECT sites.id FROM public.sites WHERE sites.tenant_id = '42' AND sites.id::text ~ 'x') OFFSET 0) p`, reject: "not leakproof"},
	{name: "barrier: unguarded regex in UPDATE", sql: `UPDATE public.customers SET name = name WHERE customers.tenant_id = '42' AND name ~ name`, reject: "not guarded"},
	{name: "barrier: guard on the wrong tenant", sql: `UPDATE public.customers SET name = name WHERE customers.tenant_id = '42' AND CASE WHEN customers.tenant_id = '43' THEN name ~ name END`, reject: "not guarded"},
	{name: "barrier: guard with an ELSE", sql: `DELETE FROM public.customers WHERE customers.tenant_id = '42' AND CASE WHEN customers.tenant_id = '42' THEN name ~ name ELSE name::int = 1 END`, reject: "not guarded"},
	{name: "barrier: unguarded MERGE ON", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' AND o.id::text ~ p.name WHEN MATCHED THEN DELETE`, reject: "not guarded"},
	{name: "barrier: unguarded ON CONFLICT WHERE", sql: `INSERT INTO public.orders AS o (id, tenant_id) VALUES (1, '42') ON CONFLICT (id) DO UPDATE SET total = 1 WHERE o.tenant_id = '42' AND 1 / (o.total - 7) = 0`, reject: "not guarded"},
	{name: "barrier: bound table in UPDATE FROM unfenced", sql: `UPDATE public.settings SET v = lower(c.name) FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42') AS c WHERE c.id = settings.id`, reject: "without a fence"},
	{name: "lateral function without fences", sql: `SELECT * FROM ` + ord + `, LATERAL generate_series(1, o.total) AS g`, reject: "not leakproof"},
	{name: "json constructors without fences", sql: `SELECT JSON_OBJECT('a' VALUE c.id), JSON_ARRAY(SELECT o.id FROM ` + ord + `), c.name IS JSON FROM ` + cust, reject: "not leakproof", minServer: 160000},
	{name: "recursive cte over tenant table without fences",
		sql: `WITH RECURSIVE t AS (SELECT o.id, o.customer_id FROM ` + ord + ` UNION ALL SELECT t.id, o.customer_id FROM t JOIN ` + ord + ` ON o.id = t.customer_id) SELECT * FROM t`, reject: "not leakproof"},
	{name: "functions and expressions without fences",
		sql: `SELECT lower(c.name), coalesce(c.name, 'x'), CASE WHEN c.id > 1 THEN 1 ELSE 0 END, c.id::text, now(), current_user, ` +
			`greatest(1, 2), (ARRAY[1, 2])[1], row_number() OVER (PARTITION BY c.name ORDER BY c.id), count(*) FILTER (WHERE c.id > 1), ` +
			`c.name IS NULL, c.id BETWEEN 1 AND 2, c.name LIKE 'a%', json_build_object('a', c.id), pg_catalog.upper(c.name) ` +
			`FROM ` + cust + ` GROUP BY GROUPING SETS ((c.name), (c.id)) ORDER BY 1 LIMIT 10 OFFSET 2`, reject: "not leakproof"},
	{name: "update multi-assign without fences", sql: `UPDATE public.orders SET (total, customer_id) = (SELECT 1, c.id FROM ` + cust + ` LIMIT 1) WHERE orders.tenant_id = '42'`, reject: "not leakproof"},
	{name: "pg_notify prefixed expression without fences", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || c.name::text, 'x') FROM ` + cust, reject: "not leakproof"},
	{name: "pg_notify with a scoped payload without fences", sql: `SELECT pg_notify('tp73475cb40a568e8d_t', (SELECT count(*)::text FROM ` + ord + `))`, reject: "not leakproof"},
	{name: "path unconfined", sql: `SELECT * FROM public.posts`, reject: "posts"},
	{name: "path through the wrong table", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN (SELECT customers.id FROM public.customers WHERE customers.tenant_id = '42')) p`, reject: "not confined"},
	{name: "path parent unconfined", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN (SELECT sites.id FROM public.sites)) p`, reject: "sites"},
	{name: "path wrong parent key", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN (SELECT sites.tenant_id FROM public.sites WHERE sites.tenant_id = '42')) p`, reject: "not confined"},
	{name: "path predicate under OR", sql: `SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN ` + sitesOf42 + ` OR true) p`, reject: "not confined"},
	{name: "path parent as a cte", sql: `WITH sites AS (SELECT 1 AS id) SELECT * FROM (SELECT * FROM public.posts WHERE posts.site_id IN (SELECT sites.id FROM sites)) p`, reject: "not confined"},
	{name: "path insert unguarded", sql: `INSERT INTO public.posts (id, site_id) VALUES (1, 5)`, reject: "without a valid parent guard"},
	{name: "path insert without via", sql: `INSERT INTO public.posts (id) VALUES (1)`, reject: "must list site_id"},
	{name: "path guard writing another value", sql: `INSERT INTO public.posts (id, site_id) VALUES (1, (SELECT CASE WHEN g.v IN ` + sitesOf42 + ` THEN g.v + 1 ELSE NULL END FROM (SELECT 5 AS v) g))`, reject: "without a valid parent guard"},
	{name: "path guard with a value in ELSE", sql: `INSERT INTO public.posts (id, site_id) VALUES (1, (SELECT CASE WHEN g.v IN ` + sitesOf42 + ` THEN g.v ELSE 7 END FROM (SELECT 5 AS v) g))`, reject: "ELSE arm"},
	{name: "path update unguarded", sql: `UPDATE public.posts SET site_id = 9 WHERE posts.site_id IN ` + sitesOf42, reject: "without a valid parent guard"},
	{name: "second binding missing", sql: `SELECT * FROM (SELECT * FROM public.documents WHERE documents.org_id = '42') d`, reject: "author_id"},
	{name: "second binding of another tenant", sql: `SELECT * FROM (SELECT * FROM public.documents WHERE documents.org_id = '42' AND documents.author_id = '8') d`, reject: "not one of the session's tenants"},
	{name: "insert missing second binding", sql: `INSERT INTO public.documents (id, org_id) VALUES (1, '42')`, reject: "author_id"},
	{name: "raw table", sql: `SELECT * FROM public.orders`, reject: "public.orders"},
	{name: "raw unqualified table", sql: `SELECT * FROM orders`, reject: "not confined"},
	{name: "wrong tenant", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '43') AS o`, reject: `"43"`},
	{name: "wrong integer tenant", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = 43) AS o`, reject: "not one of"},
	{name: "predicate inside OR", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '42' OR true) AS o`, reject: "not confined"},
	{name: "predicate inside NOT", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE NOT (orders.tenant_id <> '42')) AS o`, reject: "not confined"},
	{name: "predicate inside CASE",
		sql: `SELECT * FROM (SELECT * FROM public.orders WHERE CASE WHEN true THEN orders.tenant_id = '42' END) AS o`, reject: "not confined"},
	{name: "predicate via function", sql: `SELECT * FROM (SELECT * FROM public.orders WHERE coalesce(orders.tenant_id = '42', true)) AS o`, reject: "not confined"},
	{name: "predicate on another alias",
		sql: `SELECT * FROM public.orders o, public.customers c WHERE c.tenant_id = '42'`, reject: "public.orders AS o"},
	{name: "predicate on relname of aliased table", sql: `SELECT * FROM public.orders o WHERE orders.tenant_id = '42'`, reject: "not confined"},
	{name: "three-part column on aliased table", sql: `SELECT * FROM public.orders o WHERE public.orders.tenant_id = '42'`, reject: "not confined"},
	{name: "three-part column wrong schema", sql: `SELECT * FROM public.orders WHERE app.orders.tenant_id = '42'`, reject: "not confined"},
	{name: "predicate on wrong column", sql: `SELECT * FROM public.orders WHERE orders.customer_id = '42'`, reject: "not confined"},
	{name: "inequality", sql: `SELECT * FROM public.orders WHERE orders.tenant_id >= '42'`, reject: "not confined"},
	{name: "not in", sql: `SELECT * FROM public.orders WHERE orders.tenant_id NOT IN ('42')`, reject: "not confined"},
	{name: "param predicate", sql: `SELECT * FROM public.orders WHERE orders.tenant_id = $1`, reject: "not one of"},
	{name: "null predicate", sql: `SELECT * FROM public.orders WHERE orders.tenant_id = NULL`, reject: "not one of"},
	{name: "cast predicate", sql: `SELECT * FROM public.orders WHERE orders.tenant_id = '42'::text`, reject: "not one of"},
	{name: "bare column with two from items",
		sql: `SELECT * FROM public.orders, public.customers WHERE tenant_id = '42' AND customers.tenant_id = '42'`, reject: "public.orders"},
	{name: "predicate only in HAVING", sql: `SELECT count(*) FROM public.orders GROUP BY orders.tenant_id HAVING orders.tenant_id = '42'`, reject: "not confined"},
	{name: "predicate only in outer-join ON",
		sql: `SELECT * FROM public.plans p LEFT JOIN public.orders o ON o.tenant_id = '42'`, reject: "not confined"},
	{name: "predicate only in inner-join ON",
		sql: `SELECT * FROM public.plans p JOIN public.orders o ON o.tenant_id = '42'`, reject: "not confined"},
	{name: "predicate in correlated subquery",
		sql: `SELECT * FROM public.orders o WHERE EXISTS (SELECT 1 WHERE o.tenant_id = '42')`, reject: "not confined"},
	{name: "predicate in outer query only",
		sql: `SELECT * FROM (SELECT * FROM public.orders) AS o WHERE o.tenant_id = '42'`, reject: "not confined"},
	{name: "missing predicate in nested subquery",
		sql: `SELECT * FROM ` + ord + ` WHERE EXISTS (SELECT 1 FROM public.customers WHERE customers.id = o.customer_id)`, reject: "public.customers"},
	{name: "missing predicate in select-list subquery", sql: `SELECT (SELECT max(total) FROM public.orders) FROM ` + cust, reject: "public.orders"},
	{name: "missing predicate in lateral", sql: `SELECT * FROM ` + cust + `, LATERAL (SELECT * FROM public.orders) AS l`, reject: "public.orders"},
	{name: "missing predicate in union arm", sql: `SELECT id FROM ` + ord + ` UNION SELECT id FROM public.customers`, reject: "public.customers"},
	{name: "missing predicate in join ON subquery",
		sql: `SELECT * FROM ` + ord + ` JOIN ` + cust + ` ON c.id IN (SELECT id FROM public.customers)`, reject: "public.customers"},
	{name: "aliased join hides the table",
		sql: `SELECT * FROM (public.orders o JOIN public.plans p ON true) AS j WHERE o.tenant_id = '42'`, reject: "aliased JOIN"},
	{name: "column aliases rename tenant column",
		sql: `SELECT * FROM public.orders AS o(id, x, tenant_id) WHERE o.tenant_id = '42'`, reject: "column aliases"},
	{name: "cte shadowing trick", sql: `WITH orders AS (SELECT * FROM orders) SELECT * FROM orders`, reject: "not confined"},
	{name: "cte sees only earlier siblings",
		sql: `WITH x AS (SELECT * FROM orders), orders AS (SELECT * FROM public.plans) SELECT * FROM x`, reject: "not confined"},
	{name: "cte scope ends with its subquery",
		sql: `SELECT * FROM (WITH orders AS (SELECT 1 AS id) SELECT * FROM orders) AS a, orders`, reject: "not confined"},
	{name: "cte scope ends with its set-operation arm",
		sql: `(WITH orders AS (SELECT 1 AS id) SELECT * FROM orders) UNION ALL SELECT id FROM orders`, reject: "not confined"},
	{name: "qualified name is never a cte",
		sql: `WITH orders AS (SELECT 1 AS id) SELECT * FROM public.orders`, reject: "not confined"},
	{name: "unscoped data-modifying cte", sql: `WITH d AS (DELETE FROM public.orders RETURNING *) SELECT * FROM d`, reject: "DELETE"},
	{name: "IN list with foreign tenant",
		sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id IN ('42', '43')) AS o`, reject: `"43"`},
	{name: "other claim's value", sql: `SELECT * FROM (SELECT * FROM app.accounts WHERE accounts.org_id = '42') AS a`, reject: "not one of"},
	{name: "claim without values", policy: func() verify.Policy {
		p := policy()
		p.Tenants = map[string][]string{"": {"42"}}
		return p
	}, sql: `SELECT * FROM (SELECT * FROM app.accounts WHERE accounts.org_id = '7') AS a`, reject: `claim "org"`},
	{name: "insert other tenant", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '43')`, reject: "not one of"},
	{name: "insert other tenant in later row", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42'), (2, '43')`, reject: "not one of"},
	{name: "insert without tenant column", sql: `INSERT INTO public.orders (id, total) VALUES (1, 2)`, reject: "does not list"},
	{name: "insert without column list", sql: `INSERT INTO public.orders VALUES (1, '42', 3, 4)`, reject: "does not list"},
	{name: "insert default values", sql: `INSERT INTO public.orders DEFAULT VALUES`, reject: "does not list"},
	{name: "insert tenant default", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, DEFAULT)`, reject: "not one of"},
	{name: "insert tenant expression", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '4' || '3')`, reject: "not one of"},
	{name: "insert cast param", sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, $1::varchar(1))`, reject: "not one of"},
	{name: "insert tenant listed twice", sql: `INSERT INTO public.orders (tenant_id, tenant_id) VALUES ('42', '43')`, reject: "more than once"},
	{name: "insert select other tenant", sql: `INSERT INTO public.orders (id, tenant_id) SELECT c.id, c.tenant_id FROM ` + cust, reject: "not one of"},
	{name: "insert select stars on both sides of tenant",
		sql: `INSERT INTO public.orders (id, tenant_id, customer_id) SELECT *, '42', x.* FROM (SELECT 1) AS x`, reject: "cannot tell"},
	{name: "insert select star before tenant not last",
		sql: `INSERT INTO public.orders (id, tenant_id, customer_id) SELECT *, '42' FROM (SELECT 1, 2) AS x`, reject: "cannot tell"},
	{name: "insert select star after tenant position counted from end",
		sql: `INSERT INTO public.orders (tenant_id, id) SELECT x.*, '42' FROM (SELECT '43') AS x`, reject: "cannot tell"},
	{name: "insert select union", sql: `INSERT INTO public.orders (id, tenant_id) SELECT 1, '42' UNION SELECT 2, '43'`, reject: "set operation"},
	{name: "insert select unscoped source",
		sql: `INSERT INTO public.orders (id, tenant_id) SELECT id, '42' FROM public.customers`, reject: "public.customers"},
	{name: "update sets tenant 7", sql: `UPDATE public.orders SET tenant_id = 7 WHERE orders.tenant_id = '42'`, reject: "not one of"},
	{name: "update sets tenant from column", sql: `UPDATE public.orders SET tenant_id = orders.customer_id WHERE orders.tenant_id = '42'`, reject: "not one of"},
	{name: "update sets tenant by multi-assign",
		sql: `UPDATE public.orders SET (total, tenant_id) = (1, '42') WHERE orders.tenant_id = '42'`, reject: "row expression"},
	{name: "update without predicate", sql: `UPDATE public.orders SET total = 1`, reject: "UPDATE"},
	{name: "update predicate in OR", sql: `UPDATE public.orders SET total = 1 WHERE orders.tenant_id = '42' OR orders.id = 1`, reject: "not confined"},
	{name: "update predicate on from item only",
		sql: `UPDATE public.orders SET total = 1 FROM ` + cust + ` WHERE c.tenant_id = '42'`, reject: "not confined"},
	{name: "update bare column with from item",
		sql: `UPDATE public.orders SET total = 1 FROM public.plans WHERE tenant_id = '42'`, reject: "not confined"},
	{name: "update raw from item", sql: `UPDATE public.orders SET total = 1 FROM public.customers WHERE orders.tenant_id = '42'`, reject: "public.customers"},
	{name: "update where current of", sql: `UPDATE public.settings SET v = 1 WHERE CURRENT OF cur`, reject: "CurrentOfExpr"},
	{name: "delete without predicate", sql: `DELETE FROM public.orders`, reject: "DELETE"},
	{name: "delete wrong tenant", sql: `DELETE FROM public.orders o WHERE o.tenant_id = '43'`, reject: "not one of"},
	{name: "delete raw using", sql: `DELETE FROM public.orders o USING public.customers c WHERE o.tenant_id = '42'`, reject: "public.customers"},
	{name: "on conflict do update without predicate",
		sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42') ON CONFLICT (id) DO UPDATE SET total = 1`, reject: "ON CONFLICT"},
	{name: "on conflict predicate on excluded",
		sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42') ON CONFLICT (id) DO UPDATE SET total = 1 WHERE excluded.tenant_id = '42'`, reject: "ON CONFLICT"},
	{name: "on conflict sets tenant",
		sql: `INSERT INTO public.orders (id, tenant_id) VALUES (1, '42') ON CONFLICT (id) DO UPDATE SET tenant_id = '42' WHERE orders.tenant_id = '42'`, reject: "assigns tenant column"},
	{name: "uncatalogued table", sql: `SELECT * FROM public.secrets`, reject: "not in the catalog"},
	{name: "uncatalogued unqualified table", sql: `SELECT * FROM secrets`, reject: "not in the catalog"},
	{name: "unqualified system relation", sql: `SELECT * FROM pg_class`, reject: "rewriter qualifies system relations"},
	{name: "password hashes", sql: `SELECT * FROM pg_catalog.pg_authid`, reject: "carries other tenants' data"},
	{name: "statistics", sql: `SELECT * FROM pg_catalog.pg_stats`, reject: "carries other tenants' data"},
	{name: "statistics table", sql: `SELECT * FROM pg_catalog.pg_statistic`, reject: "carries other tenants' data"},
	{name: "activity", sql: `SELECT * FROM pg_catalog.pg_stat_activity`, reject: "carries other tenants' data"},
	{name: "large objects", sql: `SELECT * FROM pg_catalog.pg_largeobject`, reject: "carries other tenants' data"},
	{name: "sequence positions", sql: `SELECT * FROM pg_catalog.pg_sequences`, reject: "carries other tenants' data"},
	{name: "unknown system relation", sql: `SELECT * FROM pg_catalog.pg_something_new`, reject: "not on the allowlist"},
	{name: "toast", sql: `SELECT * FROM pg_toast.pg_toast_1234`, reject: "never readable"},
	{name: "temp schema", sql: `SELECT * FROM pg_temp.t`, reject: "never readable"},
	{name: "write to a system relation", sql: `DELETE FROM pg_catalog.pg_class`, reject: "read-only"},
	{name: "relation size", sql: `SELECT pg_catalog.pg_total_relation_size('public.orders')`, reject: "pg_total_relation_size"},
	{name: "user function not allowed", sql: `SELECT public.f(1)`, reject: "not allowed by the catalog"},
	{name: "database-qualified table", sql: `SELECT * FROM db.public.plans`, reject: "names a database"},
	{name: "insert into read-only global", sql: `INSERT INTO public.plans (id) VALUES (1)`, reject: "read-only"},
	{name: "update read-only global", sql: `UPDATE public.plans SET name = 'x'`, reject: "read-only"},
	{name: "delete read-only global", sql: `DELETE FROM plans`, reject: "read-only"},
	{name: "insert into uncatalogued", sql: `INSERT INTO public.secrets (a) VALUES (1)`, reject: "not in the catalog"},
	{name: "tablesample", sql: `SELECT * FROM public.plans TABLESAMPLE SYSTEM (10)`, reject: "RangeTableSample"},
	{name: "xmltable", sql: `SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int)`, reject: "RangeTableFunc"},
	{name: "xml expression", sql: `SELECT xmlelement(name a, c.name) FROM ` + cust, reject: "XmlExpr"},
	{name: "select into", sql: `SELECT * INTO newtable FROM ` + ord, reject: "IntoClause"},
	{name: "system column ctid", sql: `SELECT o.ctid FROM ` + ord, reject: "system column"},
	{name: "system column xmin bare", sql: `SELECT xmin FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '42') AS o`, reject: "system column"},
	{name: "system column tableoid in where",
		sql: `SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '42' AND orders.tableoid > 0) AS o`, reject: "system column"},
	{name: "system column by field selection",
		sql: `UPDATE public.orders SET total = 1 WHERE orders.tenant_id = '42' AND (orders).xmin <> '0'`, reject: "system column"},
	{name: "system column by function notation", sql: `DELETE FROM public.orders WHERE orders.tenant_id = '42' RETURNING ctid(orders)`, reject: "system column"},
	{name: "pg_terminate_backend", sql: `SELECT pg_terminate_backend(1)`, reject: "pg_terminate_backend"},
	{name: "query_to_xml", sql: `SELECT query_to_xml('select * from public.orders', true, true, '')`, reject: "query_to_xml"},
	{name: "qualified denied function", sql: `SELECT pg_catalog.set_config('search_path', 'x', false)`, reject: "set_config"},
	{name: "nextval", sql: `SELECT nextval('public.orders_id_seq')`, reject: "nextval"},
	{name: "dblink", sql: `SELECT * FROM dblink('host=x', 'select 1') AS t(a int)`, reject: "dblink"},
	{name: "pg_read_file", sql: `SELECT pg_read_file('/etc/passwd')`, reject: "pg_read_file"},
	{name: "large object", sql: `SELECT lo_import('/etc/passwd')`, reject: "lo_import"},
	{name: "ts_stat runs sql", sql: `SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM public.customers')`, reject: "ts_stat"},
	{name: "function outside pg_catalog", sql: `SELECT public.leak(c.id) FROM ` + cust, reject: "outside pg_catalog"},
	{name: "operator outside pg_catalog", sql: `SELECT 1 OPERATOR(public.+) 2`, reject: "outside pg_catalog"},
	{name: "quantified operator outside pg_catalog", sql: `SELECT 1 OPERATOR(public.=) ANY (SELECT 1)`, reject: "outside pg_catalog"},
	{name: "unscoped table in json constructor subquery", sql: `SELECT JSON_ARRAY(SELECT id FROM public.orders)`, reject: "public.orders"},
	{name: "locking clause does not scope", sql: `SELECT * FROM public.orders FOR UPDATE OF orders`, reject: "not confined"},
	{name: "create table", sql: `CREATE TABLE x (a int)`, reject: "CreateStmt"},
	{name: "copy of a tenant table", sql: `COPY public.orders TO STDOUT`, reject: "the rewriter must copy a scoped query"},
	{name: "copy of an unscoped query", sql: `COPY (SELECT * FROM public.orders) TO STDOUT`, reject: "public.orders"},
	{name: "copy to a program", sql: `COPY (SELECT 1) TO PROGRAM 'id'`, reject: "server file or program"},
	{name: "copy to a file", sql: `COPY public.plans TO '/tmp/x'`, reject: "server file or program"},
	{name: "copy from into read-only global", sql: `COPY public.plans FROM STDIN`, reject: "read-only global"},
	{name: "copy from into tenant table without its tenant column", sql: `COPY public.orders (id, total) FROM STDIN`, reject: "does not list tenant column tenant_id"},
	{name: "explain with costs", sql: `EXPLAIN SELECT * FROM ` + ord, reject: "COSTS OFF"},
	{name: "explain costs on", sql: `EXPLAIN (COSTS ON) SELECT 1`, reject: "COSTS OFF"},
	{name: "explain analyze", sql: `EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM ` + ord, reject: "ANALYZE reports rows of other tenants"},
	{name: "explain buffers", sql: `EXPLAIN (BUFFERS, COSTS OFF) SELECT 1`, reject: "BUFFERS"},
	{name: "explain unknown option", sql: `EXPLAIN (COSTS OFF, MEMORY) SELECT 1`, reject: "MEMORY"},
	{name: "explain unscoped", sql: `EXPLAIN (COSTS OFF) SELECT * FROM public.orders`, reject: "public.orders"},
	{name: "explain create table as", sql: `EXPLAIN (COSTS OFF) CREATE TABLE x AS SELECT 1`, reject: "CreateTableAsStmt"},
	{name: "prepare unscoped", sql: `PREPARE p AS SELECT * FROM public.orders`, reject: "public.orders"},
	{name: "prepare with a tenant parameter", sql: `PREPARE p AS INSERT INTO public.orders (id, tenant_id) VALUES (1, $1)`, reject: "a parameter of PREPARE"},
	{name: "prepare update with a tenant parameter", sql: `PREPARE p AS UPDATE public.orders SET tenant_id = $1 WHERE orders.tenant_id = '42'`, reject: "a parameter of PREPARE"},
	{name: "execute with an unscoped argument", sql: `EXECUTE p((SELECT max(id) FROM public.orders))`, reject: "public.orders"},
	{name: "merge unconfined", sql: `MERGE INTO public.orders o USING public.plans p ON true WHEN MATCHED THEN DELETE`, reject: "MERGE into tenant-bound table"},
	{name: "merge confined in an OR", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' OR true WHEN MATCHED THEN DELETE`, reject: "MERGE into tenant-bound table"},
	{name: "merge confined on the source's name", sql: `MERGE INTO public.orders o USING (SELECT * FROM public.plans) orders ON orders.tenant_id = '42' WHEN MATCHED THEN DELETE`, reject: "MERGE into tenant-bound table"},
	{name: "merge unscoped source", sql: `MERGE INTO public.orders o USING public.customers c ON o.tenant_id = '42' AND c.id = o.id WHEN MATCHED THEN DELETE`, reject: "public.customers"},
	{name: "merge insert without tenant", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' WHEN NOT MATCHED THEN INSERT (id) VALUES (1)`, reject: "does not list tenant column"},
	{name: "merge insert of another tenant", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' WHEN NOT MATCHED THEN INSERT (id, tenant_id) VALUES (1, '7')`, reject: "not one of the session's tenants"},
	{name: "merge insert default values", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' WHEN NOT MATCHED THEN INSERT DEFAULT VALUES`, reject: "tenant column"},
	{name: "merge update moving rows", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' WHEN MATCHED THEN UPDATE SET tenant_id = '7'`, reject: "not one of the session's tenants"},
	{name: "merge into read-only global", sql: `MERGE INTO public.plans p USING public.settings s ON true WHEN MATCHED THEN DELETE`, reject: "read-only"},
	{name: "merge with an unscoped subquery in a condition", sql: `MERGE INTO public.orders o USING public.plans p ON o.tenant_id = '42' WHEN MATCHED AND EXISTS (SELECT FROM public.customers) THEN DELETE`, reject: "public.customers"},
	{name: "do block", sql: `DO $$ BEGIN END $$`, reject: "DoStmt"},
	{name: "truncate", sql: `TRUNCATE public.orders`, reject: "TruncateStmt"},
	{name: "declare cursor unscoped", sql: `DECLARE c CURSOR FOR SELECT * FROM public.orders`, reject: "public.orders"},
	{name: "listen outside the channel space", sql: `LISTEN chan`, reject: "outside the session's channel space"},
	{name: "listen on another tenant's channel", sql: `LISTEN tp44cb730c420480a0_orders`, reject: "outside the session's channel space"},
	{name: "listen on a prefix without its underscore", sql: `LISTEN tp73475cb40a568e8dorders`, reject: "outside"},
	{name: "listen with several tenants", policy: multiPolicy, sql: `LISTEN tp73475cb40a568e8d_orders`, reject: "exactly one"},
	{name: "listen without a tenant", policy: func() verify.Policy { p := policy(); delete(p.Tenants, ""); return p }, sql: `LISTEN tp73475cb40a568e8d_orders`, reject: "exactly one"},
	{name: "unlisten outside the channel space", sql: `UNLISTEN chan`, reject: "outside"},
	{name: "notify outside the channel space", sql: `NOTIFY tenantproxy_catalog`, reject: "outside"},
	{name: "notify among good statements", sql: `BEGIN; NOTIFY tp73475cb40a568e8d_a; NOTIFY b; COMMIT`, reject: "statement 3"},
	{name: "pg_notify raw constant", sql: `SELECT pg_notify('orders', 'x')`, reject: "outside"},
	{name: "pg_notify of another tenant", sql: `SELECT pg_notify('tp44cb730c420480a0_orders', 'x')`, reject: "outside"},
	{name: "pg_notify constant too long", sql: `SELECT pg_notify('tp73475cb40a568e8d_` + strings.Repeat("c", 45) + `', 'x')`, reject: "longer than"},
	{name: "pg_notify expression", sql: `SELECT pg_notify(name, 'x') FROM ` + cust, reject: "neither a constant"},
	{name: "pg_notify prefix on the right", sql: `SELECT pg_notify(c.name::text || 'tp73475cb40a568e8d_', 'x') FROM ` + cust, reject: "does not start with"},
	{name: "pg_notify prefix concatenated twice", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || 'a'::text || 'b'::text, 'x')`, reject: "does not start with"},
	{name: "pg_notify other tenant's prefix", sql: `SELECT pg_notify('tp44cb730c420480a0_' || 'a'::text, 'x')`, reject: "does not start with"},
	{name: "pg_notify shorter prefix", sql: `SELECT pg_notify('tp73475cb40a568e8d' || '_a'::text, 'x')`, reject: "does not start with"},
	{name: "pg_notify without the cast", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || 'a', 'x')`, reject: "not cast to text"},
	{name: "pg_notify cast to another type", sql: `SELECT pg_notify('tp73475cb40a568e8d_' || 'a'::tsvector, 'x')`, reject: "not text"},
	{name: "pg_notify other operator", sql: `SELECT pg_notify('tp73475cb40a568e8d_' + 'a'::text, 'x')`, reject: "not ||"},
	{name: "pg_notify schema-qualified operator", sql: `SELECT pg_notify('tp73475cb40a568e8d_' OPERATOR(public.||) 'a'::text, 'x')`, reject: "not ||"},
	{name: "pg_notify non-string constant", sql: `SELECT pg_notify(1, 'x')`, reject: "not a string"},
	{name: "pg_notify three arguments", sql: `SELECT pg_notify('tp73475cb40a568e8d_a', 'x', 'y')`, reject: "other than"},
	{name: "pg_notify named arguments", sql: `SELECT pg_notify(channel => 'tp73475cb40a568e8d_a', payload => 'x')`, reject: "other than"},
	{name: "pg_notify variadic", sql: `SELECT pg_notify(VARIADIC ARRAY['tp73475cb40a568e8d_a', 'x'])`, reject: "other than"},
	{name: "pg_notify with several tenants", policy: multiPolicy, sql: `SELECT pg_notify('tp73475cb40a568e8d_a', 'x')`, reject: "exactly one"},
	{name: "pg_notify nested in a subquery", sql: `SELECT (SELECT pg_notify('a', 'x'))`, reject: "outside"},
	{name: "pg_listening_channels", sql: `SELECT * FROM pg_listening_channels()`, reject: "pg_listening_channels"},
	{name: "bad statement among good ones", sql: `SELECT 1; SELECT * FROM public.orders; SELECT 2`, reject: "statement 2"},
	{name: "does not parse", sql: `SELEC * FROM`, reject: "does not parse"},
	{name: "no snapshot", policy: func() verify.Policy { p := policy(); p.Snapshot = nil; return p }, sql: `SELECT 1`, reject: "snapshot"},
}

func run(t *testing.T, cases []tcase, wantAccept bool) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			if tc.policy != nil {
				p = tc.policy()
			}
			err := verify.Check(tc.sql, p)
			if wantAccept {
				if err != nil {
					t.Fatalf("Check(%q) refused a confined statement: %v", tc.sql, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) accepted a statement that is not provably confined", tc.sql)
			}
			if !errors.Is(err, verify.ErrUnverified) {
				t.Errorf("error %v does not wrap ErrUnverified", err)
			}
			if !strings.Contains(err.Error(), tc.reject) {
				t.Errorf("error %q does not mention %q", err, tc.reject)
			}
		})
	}
}

func TestCheckAcceptsConfinedStatements(t *testing.T) { run(t, accepted, true) }

func TestCheckRefusesUnconfinedStatements(t *testing.T) { run(t, rejected, false) }

// Under schema-per-tenant isolation the session's own schema is its own;
// any other schema the catalog does not know stays refused.
func TestCheckTenantSchema(t *testing.T) {
	p := policy()
	p.TenantSchema = "tenant_42"
	for sql, ok := range map[string]bool{
		"SELECT * FROM tenant_42.invoices":                                    true,
		"DELETE FROM tenant_42.invoices WHERE id = 1":                         true,
		"SELECT * FROM tenant_43.invoices":                                    false,
		"SELECT * FROM invoices":                                              false, // the rewriter qualifies
		"SELECT * FROM tenant_42.invoices i JOIN tenant_7.invoices j ON true": false,
	} {
		if err := verify.Check(sql, p); (err == nil) != ok {
			t.Errorf("%s: got %v, want accepted=%v", sql, err, ok)
		}
	}
}

// A refusal of the barrier stands whatever the statement holds after it.
func TestBarrierFirstRefusalStands(t *testing.T) {
	sql := `SELECT lower(c.name) FROM (SELECT * FROM public.customers WHERE customers.tenant_id = '42') AS c, ` + ordF
	if err := verify.Check(sql, policy()); err == nil || !strings.Contains(err.Error(), "without a fence") {
		t.Fatalf("got %v", err)
	}
}
