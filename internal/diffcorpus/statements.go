package diffcorpus

import "slices"

// Statement is one entry of the corpus: a statement string (possibly
// several statements) and what is expected of it.
type Statement struct {
	// Category groups statements by the rewriter's coverage list.
	Category string
	// SQL is sent as one simple-protocol query string.
	SQL string
	// Write marks statements that may change rows: their effect on the
	// tenant's rows is compared, not only their results.
	Write bool
	// Refused means the proxy must refuse it (42501 "tenantproxy: ..."),
	// change nothing and keep the session usable. A refused statement
	// expected to be accepted fails the check, and so does the reverse.
	Refused bool
	// NoCompare marks accepted statements whose output legitimately
	// differs from the tenant's own database (plans; a unique key that
	// spans tenants): they must succeed, and other tenants' rows must stay
	// unchanged, but results and the tenant's rows are not compared.
	NoCompare bool
	// Tenants restricts the tenants a statement runs for (it names a
	// tenant literal); empty means every tenant.
	Tenants []string
}

// RunsFor reports whether the statement runs for tenant.
func (s Statement) RunsFor(tenant string) bool {
	return len(s.Tenants) == 0 || slices.Contains(s.Tenants, tenant)
}

func read(cat, sql string) Statement    { return Statement{Category: cat, SQL: sql} }
func write(cat, sql string) Statement   { return Statement{Category: cat, SQL: sql, Write: true} }
func refused(cat, sql string) Statement { return Statement{Category: cat, SQL: sql, Refused: true} }

// only restricts s to tenants.
func (s Statement) only(tenants ...string) Statement { s.Tenants = tenants; return s }

// noCompare marks s as accepted without comparing its output.
func (s Statement) noCompare() Statement { s.NoCompare = true; return s }

// Statements is the corpus. Each runs, for every tenant it names (all by
// default), through the proxy on the shared database and directly on the
// tenant's own database.
var Statements = slices.Concat(reads, writes, wrappers, sessions, refusals)

// Categories are the statement categories, in the rewriter's coverage
// order; every statement has one of them.
var Categories = []string{
	"joins", "subqueries", "ctes", "set operations", "grouping and windows", "limits and ordering",
	"locking", "names", "functions", "inserts", "updates", "deletes", "upserts", "data-modifying ctes",
	"returning", "merge", "explain", "prepare/execute", "cursors", "copy to", "transactions", "settings",
	"multi-statement", "notify", "refused",
}

// reads are queries of every shape, chosen for the data: outer joins whose
// other side belongs to another tenant, NULLs, self references, aggregates
// over empty groups.
var reads = []Statement{
	read("names", "SELECT * FROM customers"),
	read("names", "SELECT * FROM orders"),
	read("names", "TABLE orders"),
	read("names", "SELECT * FROM ONLY customers"),
	read("names", "SELECT c FROM customers c"),
	read("names", "SELECT c.* FROM customers c"),
	read("names", "SELECT * FROM plans"),
	read("names", "SELECT * FROM order_items"),
	read("names", "SELECT * FROM notes"),
	read("names", "SELECT * FROM docs"),
	read("names", "SELECT * FROM projects"),
	read("names", "SELECT id, name FROM customers WHERE plan_id = 2"),
	read("names", "SELECT * FROM orders WHERE tenant_id = 2"),
	read("names", "SELECT * FROM public.orders"),
	read("names", "SELECT * FROM PUBLIC.ORDERS"),
	read("names", `SELECT * FROM "public"."orders"`),
	read("names", "SELECT o.id FROM public.orders AS o"),
	read("names", `SELECT "O".id FROM orders AS "O" WHERE "O".total > 5`),
	read("names", "SELECT ORDERS.ID FROM Orders"),
	read("names", `SELECT "Label" FROM "Mixed Case"`),
	read("names", `SELECT count(*) FROM public."Mixed Case" m WHERE m."Label" <> ''`),
	read("names", "SELECT * FROM app.accounts"),
	read("names", "SELECT id, name FROM APP.Accounts"),
	read("names", `SELECT a.name FROM "app"."accounts" a WHERE a.name IS NOT NULL`),
	refused("names", "SELECT * FROM otherdb.public.orders"),
	refused("names", "SELECT * FROM accounts"),
	refused("names", `SELECT * FROM "mixed case"`),
	refused("names", `SELECT * FROM "Orders"`),

	read("joins", "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id"),
	read("joins", "SELECT o.id, c.name FROM orders o, customers c WHERE c.id = o.customer_id"),
	read("joins", "SELECT c.name, o.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id"),
	read("joins", "SELECT c.name, o.id FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id"),
	read("joins", "SELECT o.id, c.name FROM orders o RIGHT JOIN customers c ON c.id = o.customer_id"),
	read("joins", "SELECT c.name, o.id FROM customers c FULL JOIN orders o ON o.customer_id = c.id AND o.total > 9"),
	read("joins", "SELECT c.name, o.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL"),
	read("joins", "SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id"),
	read("joins", "SELECT o.id, c.name FROM orders o FULL JOIN customers c ON c.id = o.customer_id"),
	read("joins", "SELECT p.name, c.name FROM plans p LEFT JOIN customers c ON c.plan_id = p.id"),
	read("joins", "SELECT p.name, count(c.id) FROM plans p LEFT JOIN customers c ON c.plan_id = p.id GROUP BY p.name"),
	read("joins", "SELECT a.name, b.name FROM customers a JOIN customers b ON a.id < b.id"),
	read("joins", "SELECT a.id, b.id FROM orders a JOIN orders b ON a.customer_id = b.customer_id AND a.id < b.id"),
	read("joins", "SELECT * FROM customers NATURAL JOIN (SELECT id, tenant_id FROM orders) x"),
	read("joins", "SELECT * FROM customers c NATURAL FULL JOIN (SELECT customer_id AS id, tenant_id FROM orders) x"),
	read("joins", "SELECT * FROM customers JOIN orders USING (tenant_id)"),
	read("joins", "SELECT count(*) FROM customers CROSS JOIN plans"),
	read("joins", "SELECT c.name, x.total FROM customers c CROSS JOIN LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.customer_id = c.id) x"),
	read("joins", "SELECT c.name, x.total FROM customers c LEFT JOIN LATERAL (SELECT sum(total) AS total FROM orders o WHERE o.customer_id = c.id) x ON true"),
	read("joins", "SELECT c.name, x.id FROM customers c LEFT JOIN LATERAL (SELECT id FROM orders o WHERE o.customer_id = c.id ORDER BY id LIMIT 1) x ON true"),
	read("joins", "SELECT * FROM order_items i LEFT JOIN orders o ON o.id = i.order_id LEFT JOIN customers c ON c.id = o.customer_id"),
	read("joins", "SELECT c.name, count(o.id), sum(o.total) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name"),
	read("joins", "SELECT * FROM orders o LEFT JOIN order_items i ON i.order_id = o.id AND i.tenant_id = o.tenant_id"),
	read("joins", "SELECT c.name, p.name FROM customers c JOIN plans p ON p.id = c.plan_id"),
	read("joins", "SELECT * FROM app.accounts a FULL JOIN projects p USING (id)"),
	read("joins", "SELECT a.name, p.name FROM app.accounts a JOIN projects p ON p.org_id = a.org_id"),
	read("joins", "SELECT a.id, c.id FROM app.accounts a LEFT JOIN customers c ON c.id = a.id"),
	read("joins", "SELECT n.body, o.total FROM notes n JOIN orders o ON o.id = n.order_id"),
	read("joins", "SELECT o.id, n.body FROM orders o LEFT JOIN notes n ON n.order_id = o.id"),
	read("joins", "SELECT n.id, o.id FROM notes n FULL JOIN orders o ON o.id = n.order_id"),
	read("joins", "SELECT d.title, c.name FROM docs d LEFT JOIN customers c ON c.id = d.id"),
	read("joins", `SELECT m."Label", c.name FROM "Mixed Case" m RIGHT JOIN customers c ON c.id = m.id`),

	read("subqueries", "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)"),
	read("subqueries", "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders WHERE customer_id IS NOT NULL)"),
	read("subqueries", "SELECT * FROM orders WHERE customer_id NOT IN (SELECT id FROM customers)"),
	read("subqueries", "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 6)"),
	read("subqueries", "SELECT * FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)"),
	read("subqueries", "SELECT name, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c"),
	read("subqueries", "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customers)"),
	read("subqueries", "SELECT customer_id FROM orders GROUP BY customer_id HAVING sum(total) > (SELECT avg(total) FROM orders)"),
	read("subqueries", "SELECT id FROM orders ORDER BY (SELECT count(*) FROM customers c WHERE c.id = orders.customer_id), id"),
	read("subqueries", "SELECT * FROM (SELECT customer_id, sum(total) s FROM orders GROUP BY 1) t WHERE s > 5"),
	read("subqueries", "SELECT * FROM (VALUES (101), (102), (201)) v(x) WHERE x IN (SELECT customer_id FROM orders)"),
	read("subqueries", "SELECT * FROM customers c WHERE c.plan_id = ANY (SELECT id FROM plans)"),
	read("subqueries", "SELECT count(*) FROM orders WHERE total > ALL (SELECT total FROM orders o2 WHERE o2.id < orders.id)"),
	read("subqueries", "SELECT * FROM orders WHERE total > ALL (SELECT total FROM orders WHERE note IS NULL)"),
	read("subqueries", "SELECT o.id, (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) FROM orders o"),
	read("subqueries", "SELECT upper((SELECT max(name) FROM customers))"),
	read("subqueries", "SELECT p.name FROM plans p WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.plan_id = p.id)"),
	read("subqueries", "SELECT * FROM customers WHERE id = (SELECT max(customer_id) FROM orders)"),
	read("subqueries", "SELECT (SELECT name FROM customers c WHERE c.id = o.customer_id) FROM orders o"),
	read("subqueries", "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE plan_id IN (SELECT id FROM plans WHERE name = 'pro'))"),
	read("subqueries", "SELECT * FROM orders WHERE id IN (SELECT order_id FROM notes)"),
	read("subqueries", "SELECT count(*) FROM notes WHERE order_id IS NULL"),
	read("subqueries", "SELECT name FROM app.accounts a WHERE EXISTS (SELECT 1 FROM projects p WHERE p.name = a.name)"),
	read("subqueries", "SELECT * FROM plans WHERE id > (SELECT count(*) FROM docs)"),

	read("ctes", "WITH t AS (SELECT * FROM orders) SELECT * FROM t"),
	read("ctes", "WITH orders AS (SELECT * FROM orders WHERE total > 6) SELECT * FROM orders"),
	read("ctes", "WITH a AS (SELECT * FROM customers), b AS (SELECT a.*, o.total FROM a JOIN orders o ON o.customer_id = a.id) SELECT * FROM b"),
	read("ctes", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT count(*) FROM orders)) SELECT * FROM r"),
	read("ctes", "WITH RECURSIVE chain(id) AS (SELECT 101 UNION SELECT o.id + 1 FROM chain JOIN orders o ON o.id = chain.id) SELECT * FROM chain"),
	read("ctes", "WITH x AS MATERIALIZED (SELECT * FROM customers) SELECT count(*) FROM x"),
	read("ctes", "WITH x AS NOT MATERIALIZED (SELECT * FROM app.accounts) SELECT * FROM x"),
	read("ctes", "WITH x AS (WITH y AS (SELECT * FROM orders) SELECT * FROM y WHERE total > 1) SELECT count(*) FROM x"),
	read("ctes", "WITH c AS (SELECT id FROM customers) SELECT * FROM orders WHERE customer_id IN (SELECT id FROM c)"),
	read("ctes", "WITH t AS (SELECT * FROM orders) SELECT a.id, b.id FROM t a JOIN t b ON a.customer_id = b.customer_id"),
	read("ctes", "WITH customers AS (SELECT 1 AS id) SELECT * FROM customers"),
	read("ctes", "WITH p AS (SELECT * FROM plans) SELECT p.name, count(c.id) FROM p LEFT JOIN customers c ON c.plan_id = p.id GROUP BY p.name"),

	read("set operations", "SELECT name FROM customers UNION SELECT note FROM orders"),
	read("set operations", "SELECT customer_id FROM orders UNION ALL SELECT id FROM customers"),
	read("set operations", "SELECT id FROM customers INTERSECT SELECT customer_id FROM orders"),
	read("set operations", "SELECT id FROM customers INTERSECT ALL SELECT customer_id FROM orders"),
	read("set operations", "SELECT id FROM customers EXCEPT SELECT customer_id FROM orders"),
	read("set operations", "SELECT id FROM customers EXCEPT ALL SELECT customer_id FROM orders"),
	read("set operations", "SELECT name FROM customers UNION ALL SELECT name FROM plans"),
	read("set operations", "SELECT name FROM customers UNION ALL SELECT name FROM app.accounts UNION ALL SELECT name FROM projects"),
	read("set operations", "SELECT id FROM orders UNION SELECT id FROM order_items ORDER BY 1"),
	read("set operations", "(SELECT id FROM customers) EXCEPT (SELECT id FROM customers WHERE plan_id = 1)"),
	read("set operations", "VALUES (1), (101), (201) INTERSECT SELECT id FROM customers"),
	read("set operations", "SELECT order_id FROM notes UNION SELECT id FROM orders WHERE total > 5"),

	read("grouping and windows", "SELECT count(*), sum(total), min(id), max(id) FROM orders"),
	read("grouping and windows", "SELECT DISTINCT customer_id FROM orders"),
	read("grouping and windows", "SELECT DISTINCT tenant_id FROM orders"),
	read("grouping and windows", "SELECT 1 FROM customers HAVING count(*) > 1"),
	read("grouping and windows", "SELECT coalesce(max(total), 0) FROM orders WHERE customer_id = 999"),
	read("grouping and windows", "SELECT customer_id, count(*) FROM orders GROUP BY customer_id HAVING count(*) > 0"),
	read("grouping and windows", "SELECT customer_id, total, sum(total) OVER (PARTITION BY customer_id ORDER BY id) FROM orders"),
	read("grouping and windows", "SELECT id, row_number() OVER (ORDER BY id), rank() OVER (ORDER BY total) FROM orders"),
	read("grouping and windows", "SELECT customer_id, rank() OVER (ORDER BY total DESC, id) FROM orders"),
	read("grouping and windows", "SELECT customer_id, rank() OVER (ORDER BY total DESC) FROM orders"),
	read("grouping and windows", "SELECT customer_id, count(*) FROM orders GROUP BY ROLLUP (customer_id)"),
	read("grouping and windows", "SELECT customer_id, note, count(*) FROM orders GROUP BY GROUPING SETS ((customer_id), (note), ())"),
	read("grouping and windows", "SELECT customer_id, note, count(*) FROM orders GROUP BY CUBE (customer_id, note)"),
	read("grouping and windows", "SELECT json_agg(name ORDER BY name) FROM customers"),
	read("grouping and windows", "SELECT string_agg(name, ',' ORDER BY name) FILTER (WHERE plan_id IS NOT NULL) FROM customers"),
	read("grouping and windows", "SELECT count(*), count(DISTINCT customer_id), max(total), string_agg(note, ',' ORDER BY id) FROM orders"),
	read("grouping and windows", "SELECT id, lag(total) OVER w, lead(total) OVER w FROM orders WINDOW w AS (ORDER BY id)"),
	read("grouping and windows", "SELECT count(*) FILTER (WHERE note IS NULL), count(note) FROM orders"),
	read("grouping and windows", "SELECT tenant_id, count(*) FROM order_items GROUP BY tenant_id"),
	read("grouping and windows", "SELECT plan_id, count(*), grouping(plan_id) FROM customers GROUP BY ROLLUP (plan_id)"),
	read("grouping and windows", "SELECT org_id, count(*) FROM app.accounts GROUP BY org_id"),
	read("grouping and windows", "SELECT id, sum(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM order_items"),

	read("limits and ordering", "SELECT * FROM orders ORDER BY total DESC, id LIMIT 2"),
	read("limits and ordering", "SELECT * FROM orders ORDER BY id OFFSET 1 FETCH FIRST 1 ROWS ONLY"),
	read("limits and ordering", "SELECT DISTINCT ON (customer_id) customer_id, id FROM orders ORDER BY customer_id, id DESC"),
	read("limits and ordering", "SELECT name FROM customers ORDER BY name DESC LIMIT 1 OFFSET 1"),
	read("limits and ordering", "SELECT * FROM orders ORDER BY id FETCH FIRST 2 ROWS WITH TIES"),
	read("limits and ordering", "SELECT * FROM customers ORDER BY id LIMIT 2"),
	read("limits and ordering", "SELECT id FROM orders ORDER BY id DESC LIMIT 1"),
	read("limits and ordering", "SELECT * FROM orders ORDER BY total LIMIT ALL"),
	read("limits and ordering", "SELECT id FROM orders ORDER BY note NULLS FIRST, id LIMIT 3"),
	read("limits and ordering", "SELECT id FROM customers ORDER BY id OFFSET 10"),
	read("limits and ordering", "SELECT * FROM orders ORDER BY id LIMIT (SELECT count(*) FROM customers) - 1"),

	read("locking", "SELECT * FROM orders FOR UPDATE"),
	read("locking", "SELECT * FROM orders ORDER BY id FOR UPDATE"),
	read("locking", "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR SHARE OF o"),
	read("locking", "SELECT * FROM customers FOR NO KEY UPDATE SKIP LOCKED"),
	read("locking", "SELECT * FROM customers FOR KEY SHARE NOWAIT"),
	read("locking", "SELECT * FROM orders WHERE id = 101 FOR UPDATE"),
	read("locking", "BEGIN; SELECT * FROM app.accounts FOR UPDATE; COMMIT"),

	read("functions", "SELECT upper(name), length(name) FROM customers WHERE name LIKE '%n%'"),
	read("functions", "SELECT round(avg(total), 2), abs(min(total) - 3) FROM orders"),
	read("functions", "SELECT coalesce(note, 'none'), nullif(note, '') FROM orders"),
	read("functions", "SELECT to_char(total, 'FM999.00') FROM orders"),
	read("functions", "SELECT array_agg(id ORDER BY id) FROM customers"),
	read("functions", "SELECT jsonb_build_object('id', id, 'name', name) FROM customers"),
	read("functions", "SELECT * FROM generate_series(1, 3) g WHERE g <= (SELECT count(*) FROM customers)"),
	read("functions", "SELECT x FROM unnest(ARRAY(SELECT id FROM customers)) x"),
	read("functions", "SELECT greatest(total, 6), least(total, 6) FROM orders"),
	read("functions", "SELECT split_part(name, 'n', 1), replace(name, 'a', 'A') FROM customers"),
	read("functions", "SELECT current_setting('server_version_num') IS NOT NULL"),
	read("functions", "SELECT row_to_json(c) FROM customers c"),
	read("functions", "SELECT row_to_json(c) FROM customers c ORDER BY id"),
	read("functions", "SELECT jsonb_agg(o ORDER BY id) FROM orders o"),
	read("functions", "SELECT to_jsonb(o) - 'tenant_id' FROM orders o"),
	read("functions", "SELECT format('%s-%s', id, name), md5(coalesce(name, '')) FROM customers"),
	read("functions", "SELECT lower(\"Label\") FROM \"Mixed Case\""),
	read("functions", "SELECT * FROM generate_series(1, (SELECT count(*) FROM orders)::int)"),
	read("functions", "SELECT pg_catalog.upper(name) FROM app.accounts"),
	read("functions", "SELECT length(string_agg(body, '')) FROM notes"),
}

// writes are INSERT, UPDATE, DELETE, upserts, data-modifying CTEs and
// MERGE, many aimed at other tenants' rows. A statement naming a tenant
// literal runs only for the tenants it is expected to behave the same
// for, and is refused for the others.
var writes = []Statement{
	write("inserts", "INSERT INTO customers (id, name) VALUES (801, 'new'), (802, 'newer')"),
	write("inserts", "INSERT INTO customers VALUES (803, 1, 'positional', NULL)").only("1"),
	write("inserts", "INSERT INTO customers (name, id) VALUES ('reordered', 804)"),
	write("inserts", "INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING id, tenant_id"),
	write("inserts", "INSERT INTO orders (tenant_id, customer_id, total) VALUES (1, 1, 1) RETURNING id, tenant_id").only("1"),
	write("inserts", "INSERT INTO orders (tenant_id, total) VALUES (2, 1)").only("2"),
	write("inserts", "INSERT INTO orders (tenant_id, total) VALUES ('3', 1)").only("3"),
	write("inserts", "INSERT INTO orders (customer_id, total) SELECT id, 1 FROM customers"),
	write("inserts", "INSERT INTO orders (customer_id, total) SELECT customer_id, sum(total) FROM orders GROUP BY customer_id"),
	write("inserts", "INSERT INTO orders DEFAULT VALUES"),
	write("inserts", "INSERT INTO orders (total) VALUES (1), (2), (3)"),
	write("inserts", "INSERT INTO orders (customer_id, total, note) VALUES (101, 1, NULL), (NULL, 2, '')"),
	write("inserts", "INSERT INTO orders VALUES (900, 1, 101, 9, 'positional')").only("1"),
	write("inserts", "INSERT INTO orders (id, customer_id) SELECT id + 1000, id FROM customers RETURNING *"),
	write("inserts", "INSERT INTO orders (customer_id, total) VALUES (101, 1), (201, 2) RETURNING id, tenant_id"),
	write("inserts", "INSERT INTO orders DEFAULT VALUES RETURNING *"),
	write("inserts", "INSERT INTO orders (customer_id, total) SELECT 1, 2 UNION ALL SELECT 3, 4"),
	write("inserts", "INSERT INTO order_items (id, order_id, qty) SELECT 900 + row_number() OVER (ORDER BY id), id, 1 FROM orders"),
	write("inserts", "INSERT INTO order_items (id, order_id, qty) SELECT id + 1000, order_id, qty FROM order_items"),
	write("inserts", "INSERT INTO settings VALUES ('new', 'value')"),
	write("inserts", "INSERT INTO notes (id, order_id, body) VALUES (501, 101, 'new')").only("1"),
	write("inserts", "INSERT INTO notes (id, order_id, body) VALUES (502, 201, 'new')").only("2"),
	write("inserts", "INSERT INTO notes (id, order_id, body) SELECT id + 600, id, 'copied' FROM orders"),
	write("inserts", "INSERT INTO docs (id, title) VALUES (701, 'filled')"),
	write("inserts", "INSERT INTO app.accounts (id, name) VALUES (950, 'new account')"),
	write("inserts", "INSERT INTO projects (id, name) VALUES (951, 'new project')"),
	write("inserts", "INSERT INTO projects (id, org_id, name) VALUES (952, 2, 'named org')").only("2"),
	write("inserts", `INSERT INTO "Mixed Case" (id, "Label") VALUES (953, 'mc')`),
	// Under another tenant's order: 23503, as on a database without it.
	write("inserts", "INSERT INTO notes (id, order_id, body) VALUES (503, 201, 'under tenant 2')").only("1", "3"),
	refused("inserts", "INSERT INTO notes (id, order_id, body) VALUES (504, NULL, 'orphan')"),
	refused("inserts", "INSERT INTO docs (id, author, title) VALUES (702, 'bob', 'as bob')"),
	refused("inserts", "INSERT INTO orders VALUES (900, 1, 101, 9, 'positional')").only("2", "3"),
	refused("inserts", "INSERT INTO projects (id, org_id, name) VALUES (952, 2, 'named org')").only("1", "3"),
	refused("inserts", "INSERT INTO plans VALUES (9, 'mine now')"),

	write("updates", "UPDATE orders SET total = total * 2"),
	write("updates", "UPDATE orders SET total = total + 1"),
	write("updates", "UPDATE orders SET note = 'x' WHERE customer_id = 101"),
	write("updates", "UPDATE orders SET note = 'mine' WHERE id = 201"),
	write("updates", "UPDATE orders o SET note = c.name FROM customers c WHERE c.id = o.customer_id"),
	write("updates", "UPDATE orders SET total = (SELECT count(*) FROM customers) WHERE id IN (101, 201, 301)"),
	write("updates", "UPDATE orders SET total = (SELECT sum(qty) FROM order_items i WHERE i.order_id = orders.id)"),
	write("updates", "UPDATE customers SET plan_id = 2 WHERE plan_id IS DISTINCT FROM 2"),
	write("updates", "UPDATE customers SET name = upper(name) WHERE id IN (SELECT customer_id FROM orders)"),
	write("updates", "UPDATE customers SET plan_id = NULL WHERE name = ''"),
	write("updates", "UPDATE orders SET (note, total) = (SELECT 'row', 1) WHERE total < 6"),
	write("updates", "UPDATE orders SET tenant_id = 1 WHERE id = 101").only("1"),
	write("updates", "UPDATE orders SET tenant_id = 1 WHERE id = 201").only("1"),
	write("updates", "UPDATE settings SET value = 'light' WHERE name = 'theme'"),
	write("updates", "UPDATE notes SET body = body || '!'"),
	write("updates", "UPDATE notes SET order_id = 201 WHERE id = 101"), // for tenant 1, order 201 is tenant 2's: 23503
	write("updates", "UPDATE docs SET title = title || '!'"),
	write("updates", "UPDATE app.accounts SET name = 'renamed'"),
	write("updates", "UPDATE projects SET name = upper(name) WHERE id > 100"),
	write("updates", `UPDATE "Mixed Case" SET "Label" = "Label" || '?'`),
	refused("updates", "UPDATE orders SET tenant_id = 1 WHERE id = 101").only("2", "3"),
	refused("updates", "UPDATE docs SET author = 'bob'"),
	refused("updates", "UPDATE projects SET org_id = 9"),
	refused("updates", "UPDATE app.accounts SET org_id = org_id + 1"),

	write("deletes", "DELETE FROM order_items WHERE qty > 2"),
	write("deletes", "DELETE FROM orders WHERE total > 8 AND id NOT IN (SELECT order_id FROM notes WHERE order_id IS NOT NULL)"),
	write("deletes", "DELETE FROM order_items i USING orders o WHERE o.id = i.order_id AND o.total > 5"),
	write("deletes", "DELETE FROM customers WHERE id NOT IN (SELECT customer_id FROM orders WHERE customer_id IS NOT NULL)"),
	write("deletes", "DELETE FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"),
	write("deletes", "DELETE FROM order_items"),
	write("deletes", "DELETE FROM orders WHERE id = 105"),
	write("deletes", "DELETE FROM orders"),
	write("deletes", "DELETE FROM customers WHERE id = 201"),
	write("deletes", "DELETE FROM notes WHERE body = 'n3'"),
	write("deletes", "DELETE FROM docs"),
	write("deletes", "DELETE FROM projects"),
	write("deletes", "DELETE FROM app.accounts WHERE name IS NULL"),
	write("deletes", "DELETE FROM settings WHERE name = 'x'"),
	refused("deletes", "DELETE FROM plans WHERE id = 3"),

	write("upserts", "INSERT INTO customers (id, name) VALUES (101, 'again') ON CONFLICT DO NOTHING").only("1"),
	write("upserts", "INSERT INTO customers (id, name) VALUES (101, 'upserted') ON CONFLICT (id) DO UPDATE SET name = excluded.name").only("1"),
	write("upserts", "INSERT INTO customers (id, name) VALUES (201, 'upserted') ON CONFLICT (id) DO UPDATE SET name = excluded.name").only("2"),
	write("upserts", "INSERT INTO customers (id, name) VALUES (850, 'fresh') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING *"),
	write("upserts", "INSERT INTO customers AS c (id, name) VALUES (102, 'x') ON CONFLICT (id) DO UPDATE SET name = c.name || excluded.name WHERE c.plan_id IS NOT NULL").only("1"),
	write("upserts", "INSERT INTO settings VALUES ('theme', 'blue') ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
	write("upserts", "INSERT INTO orders (id, total) VALUES (105, 1) ON CONFLICT (id) DO UPDATE SET total = excluded.total + 100 RETURNING *").only("1"),
	write("upserts", "INSERT INTO orders (id, tenant_id, total) VALUES (105, 1, 1) ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, total = 77").only("1"),
	write("upserts", "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO UPDATE SET total = 0, note = 'stolen' RETURNING *").only("2"),
	write("upserts", "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO NOTHING").only("2"),
	// The key spans tenants: on the shared database another tenant's row
	// conflicts, on the tenant's own nothing does. Only isolation counts.
	write("upserts", "INSERT INTO orders (id, total) VALUES (105, 1) ON CONFLICT (id) DO UPDATE SET total = excluded.total + 100 RETURNING *").only("2", "3").noCompare(),
	write("upserts", "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO UPDATE SET total = 0, note = 'stolen' RETURNING *").only("1", "3").noCompare(),
	write("upserts", "INSERT INTO orders (id, total) VALUES (201, 1) ON CONFLICT (id) DO NOTHING").only("1", "3").noCompare(),
	refused("upserts", "INSERT INTO orders (id, tenant_id, total) VALUES (105, 1, 1) ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, total = 77").only("2", "3"),
	refused("upserts", "INSERT INTO orders (id, total) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET tenant_id = 9"),

	write("data-modifying ctes", "WITH gone AS (DELETE FROM order_items WHERE qty < 3 RETURNING order_id) UPDATE orders SET note = 'had items' WHERE id IN (SELECT order_id FROM gone)"),
	write("data-modifying ctes", "WITH n AS (INSERT INTO customers (id, name) VALUES (860, 'cte') RETURNING id) INSERT INTO orders (customer_id, total) SELECT id, 9 FROM n"),
	write("data-modifying ctes", "WITH u AS (UPDATE orders SET total = 0 WHERE total < 6 RETURNING id) SELECT count(*) FROM u"),
	write("data-modifying ctes", "WITH s AS (SELECT id FROM customers WHERE name LIKE 'a%') DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE customer_id IN (SELECT id FROM s))"),
	write("data-modifying ctes", "WITH gone AS (DELETE FROM orders RETURNING *) INSERT INTO order_items (id, order_id, qty) SELECT id + 5000, id, 1 FROM gone"),
	write("data-modifying ctes", "WITH gone AS (DELETE FROM orders WHERE id NOT IN (SELECT order_id FROM notes WHERE order_id IS NOT NULL) RETURNING *) INSERT INTO order_items (id, order_id, qty) SELECT id + 5000, id, 1 FROM gone"),
	write("data-modifying ctes", "WITH moved AS (UPDATE customers SET plan_id = 3 RETURNING id) SELECT count(*) FROM moved"),
	write("data-modifying ctes", "WITH a AS (UPDATE app.accounts SET name = name || '+' RETURNING id), p AS (DELETE FROM projects RETURNING id) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM p)"),

	write("returning", "UPDATE customers SET plan_id = 1 RETURNING id, plan_id"),
	write("returning", "DELETE FROM order_items WHERE qty = 1 RETURNING *"),
	write("returning", "DELETE FROM order_items i USING orders o WHERE o.id = i.order_id RETURNING i.id, o.total"),
	write("returning", "UPDATE orders o SET note = c.name FROM customers c WHERE c.id = o.customer_id RETURNING o.*"),
	write("returning", "INSERT INTO customers (id, name) VALUES (870, 'r') RETURNING tenant_id"),
	write("returning", "DELETE FROM orders WHERE customer_id = 101 RETURNING *"),
	write("returning", "DELETE FROM orders o USING customers c WHERE c.id = o.customer_id RETURNING o.id, c.name"),
	write("returning", "UPDATE projects SET name = 'r' RETURNING *"),
	write("returning", "INSERT INTO app.accounts (id, name) VALUES (871, 'r') RETURNING org_id, (SELECT count(*) FROM app.accounts)"),

	write("merge", "MERGE INTO customers c USING (VALUES (101, 'm1'), (870, 'm2')) v(id, name) ON c.id = v.id WHEN MATCHED THEN UPDATE SET name = v.name WHEN NOT MATCHED THEN INSERT (id, name) VALUES (v.id, v.name)").only("1"),
	write("merge", "MERGE INTO customers c USING (VALUES (201, 'm1')) v(id, name) ON c.id = v.id WHEN MATCHED THEN UPDATE SET name = v.name WHEN NOT MATCHED THEN DO NOTHING"),
	write("merge", "MERGE INTO customers c USING (VALUES (101), (201), (301)) v(id) ON c.id = v.id WHEN MATCHED THEN DELETE"),
	write("merge", "MERGE INTO order_items i USING orders o ON i.order_id = o.id WHEN MATCHED AND o.total > 6 THEN DELETE WHEN MATCHED THEN UPDATE SET qty = qty + 1"),
	write("merge", "MERGE INTO orders o USING (SELECT order_id, sum(qty) q FROM order_items GROUP BY order_id) s ON o.id = s.order_id WHEN MATCHED THEN UPDATE SET total = o.total + s.q WHEN NOT MATCHED AND s.order_id IS NOT NULL THEN INSERT (id, customer_id, total) VALUES (s.order_id + 5000, NULL, s.q)"),
	write("merge", "MERGE INTO customers c USING (SELECT customer_id, count(*) n FROM orders GROUP BY customer_id) s ON c.id = s.customer_id WHEN MATCHED THEN UPDATE SET name = c.name || s.n WHEN NOT MATCHED AND s.customer_id IS NOT NULL THEN INSERT (id, name) VALUES (s.customer_id + 5000, 'from orders')"),
	write("merge", "MERGE INTO customers c USING plans p ON c.id = p.id WHEN NOT MATCHED THEN INSERT (id, tenant_id, name) VALUES (p.id + 880, 1, p.name)").only("1"),
	write("merge", "MERGE INTO customers c USING plans p ON c.id = p.id WHEN NOT MATCHED THEN INSERT (id, tenant_id, name) VALUES (p.id + 880, 2, p.name)").only("2"),
	write("merge", "MERGE INTO customers c USING plans p ON c.id = p.id WHEN NOT MATCHED THEN INSERT (id, tenant_id, name) VALUES (p.id + 880, 3, p.name)").only("3"),
	write("merge", "MERGE INTO customers c USING customers s ON c.id = s.id + 1 WHEN MATCHED THEN UPDATE SET plan_id = s.plan_id WHEN NOT MATCHED THEN INSERT (id, name, plan_id) VALUES (s.id + 700, s.name, s.plan_id)"),
	write("merge", "MERGE INTO app.accounts a USING projects p ON a.id = p.id WHEN MATCHED THEN UPDATE SET name = p.name WHEN NOT MATCHED THEN INSERT (id, name) VALUES (p.id + 500, p.name)"),
	write("merge", "MERGE INTO settings s USING (VALUES ('theme', 'm')) v(name, value) ON s.name = v.name WHEN MATCHED THEN UPDATE SET value = v.value"),
	refused("merge", "MERGE INTO customers c USING plans p ON c.id = p.id WHEN NOT MATCHED THEN INSERT (id, tenant_id, name) VALUES (p.id + 880, 1, p.name)").only("2", "3"),
	refused("merge", "MERGE INTO customers c USING plans p ON c.id = p.id WHEN MATCHED THEN UPDATE SET tenant_id = 9"),
	refused("merge", "MERGE INTO plans p USING customers c ON c.plan_id = p.id WHEN MATCHED THEN DELETE"),
}

// wrappers are statements that wrap a query: EXPLAIN, PREPARE/EXECUTE,
// cursors, COPY TO.
var wrappers = []Statement{
	read("explain", "EXPLAIN SELECT * FROM orders").noCompare(),
	read("explain", "EXPLAIN (COSTS OFF) SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id").noCompare(),
	read("explain", "EXPLAIN (VERBOSE, FORMAT JSON) SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id").noCompare(),
	read("explain", "EXPLAIN UPDATE orders SET total = 1").noCompare(),
	read("explain", "EXPLAIN (COSTS OFF) INSERT INTO customers (id, name) VALUES (990, 'e')").noCompare(),
	read("explain", "EXPLAIN MERGE INTO customers c USING plans p ON c.id = p.id WHEN MATCHED THEN DELETE").noCompare(),
	read("explain", "PREPARE ep AS SELECT * FROM app.accounts; EXPLAIN (COSTS OFF) EXECUTE ep; DEALLOCATE ep").noCompare(),
	refused("explain", "EXPLAIN ANALYZE SELECT * FROM orders"),
	// ANALYZE of a write would run it, but its row counters include the
	// rows the tenant filter removed: refused (see README).
	refused("explain", "EXPLAIN ANALYZE UPDATE orders SET total = total + 1"),
	refused("explain", "EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM order_items WHERE qty > 2"),
	refused("explain", "EXPLAIN (COSTS ON) SELECT * FROM orders"),
	refused("explain", "EXPLAIN (BUFFERS) SELECT * FROM orders"),
	refused("explain", "EXPLAIN SELECT * FROM secrets"),

	read("prepare/execute", "PREPARE p(int) AS SELECT * FROM orders WHERE customer_id = $1; EXECUTE p(101); EXECUTE p(201); DEALLOCATE p"),
	read("prepare/execute", "PREPARE p AS SELECT name FROM customers WHERE id = $1; EXECUTE p(101); EXECUTE p(201); DEALLOCATE p"),
	read("prepare/execute", "PREPARE q AS SELECT count(*) FROM customers; EXECUTE q; DEALLOCATE q"),
	read("prepare/execute", "PREPARE r(text) AS SELECT * FROM app.accounts a JOIN projects p ON p.name = $1; EXECUTE r('one'); DEALLOCATE PREPARE r"),
	write("prepare/execute", "PREPARE ins(int, text) AS INSERT INTO customers (id, name) VALUES ($1, $2); EXECUTE ins(890, 'prepared'); DEALLOCATE ins"),
	write("prepare/execute", "PREPARE up AS UPDATE orders SET total = total + 1; EXECUTE up; EXECUTE up; DEALLOCATE up"),
	write("prepare/execute", "PREPARE d(int) AS DELETE FROM order_items WHERE id = $1; EXECUTE d(101); EXECUTE d(201); EXECUTE d(301); DEALLOCATE d"),
	refused("prepare/execute", "PREPARE bad(int) AS INSERT INTO customers (id, tenant_id, name) VALUES (1, $1, 'x')"),
	refused("prepare/execute", "PREPARE s AS SELECT * FROM secrets"),

	read("cursors", "BEGIN; DECLARE c CURSOR FOR SELECT id, total FROM orders ORDER BY id; FETCH 2 FROM c; MOVE FORWARD 1 IN c; FETCH ALL FROM c; CLOSE c; COMMIT"),
	read("cursors", "BEGIN; DECLARE c CURSOR FOR SELECT id, name FROM customers ORDER BY id; FETCH 2 FROM c; FETCH ALL FROM c; CLOSE c; COMMIT"),
	read("cursors", "BEGIN; DECLARE c SCROLL CURSOR FOR SELECT id FROM orders ORDER BY id; MOVE FORWARD 2 IN c; FETCH NEXT FROM c; FETCH PRIOR FROM c; CLOSE c; COMMIT"),
	read("cursors", "DECLARE h CURSOR WITH HOLD FOR SELECT * FROM notes ORDER BY id; FETCH ALL FROM h; CLOSE h"),
	read("cursors", "BEGIN; DECLARE c NO SCROLL CURSOR FOR SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.id; FETCH FORWARD 3 FROM c; FETCH ALL FROM c; COMMIT"),
	refused("cursors", "BEGIN; DECLARE c CURSOR FOR SELECT * FROM secrets; FETCH 1 FROM c; COMMIT"),
	refused("cursors", "BEGIN; DECLARE c CURSOR FOR SELECT * FROM orders FOR UPDATE; FETCH 1 FROM c; UPDATE orders SET total = 0 WHERE CURRENT OF c; COMMIT"),

	read("copy to", "COPY orders TO STDOUT"),
	read("copy to", "COPY orders (id, total) TO STDOUT"),
	read("copy to", "COPY orders (id, total) TO STDOUT (FORMAT csv, HEADER)"),
	read("copy to", "COPY (SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id) TO STDOUT (FORMAT csv)"),
	read("copy to", "COPY (SELECT * FROM orders WHERE note IS NOT NULL) TO STDOUT (FORMAT csv)"),
	read("copy to", "COPY notes TO STDOUT"),
	read("copy to", "COPY plans TO STDOUT"),
	read("copy to", "COPY app.accounts TO STDOUT (FORMAT csv, HEADER)"),
	read("copy to", "COPY docs (title) TO STDOUT"),
	refused("copy to", "COPY orders TO '/tmp/orders'"),
	refused("copy to", "COPY (SELECT 1) TO PROGRAM 'id'"),
	refused("copy to", "COPY secrets TO STDOUT"),
}

// sessions are transaction control, settings and multi-statement strings.
var sessions = []Statement{
	read("transactions", "BEGIN; SELECT count(*) FROM orders; COMMIT"),
	read("transactions", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT * FROM customers; COMMIT"),
	read("transactions", "BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM app.accounts; COMMIT"),
	write("transactions", "BEGIN; UPDATE orders SET total = 1; SAVEPOINT a; DELETE FROM order_items; ROLLBACK TO SAVEPOINT a; COMMIT"),
	write("transactions", "BEGIN; INSERT INTO customers (id, name) VALUES (895, 'tx'); ROLLBACK"),
	write("transactions", "START TRANSACTION; UPDATE customers SET name = 'tx'; COMMIT"),
	write("transactions", "BEGIN; SAVEPOINT s; DELETE FROM customers; RELEASE SAVEPOINT s; COMMIT"),
	write("transactions", "BEGIN READ ONLY; UPDATE orders SET total = 0; COMMIT"),
	refused("transactions", "BEGIN; SELECT * FROM secrets; COMMIT"),
	refused("transactions", "PREPARE TRANSACTION 'x'"),

	read("settings", "SET application_name = 'corpus'; SHOW application_name"),
	read("settings", "SET LOCAL statement_timeout = '5s'; SELECT count(*) FROM orders"),
	read("settings", "SET TIME ZONE 'UTC'; SELECT count(*) FROM customers; RESET TimeZone"),
	read("settings", "SET extra_float_digits = 3; SELECT total::float8 FROM orders"),
	read("settings", "SET client_min_messages = warning; SELECT name FROM app.accounts; RESET client_min_messages"),
	read("settings", "SET bytea_output = 'hex'; SELECT decode(md5(name), 'hex') FROM customers WHERE name IS NOT NULL"),
	refused("settings", "SET search_path = public"),
	refused("settings", "SET LOCAL search_path = app"),
	refused("settings", "SET ROLE postgres"),
	refused("settings", "SET SESSION AUTHORIZATION postgres"),
	read("settings", "RESET ALL"),
	refused("settings", "SET standard_conforming_strings = off"),
	refused("settings", "SET work_mem = '1GB'"),

	read("multi-statement", "SELECT count(*) FROM orders; SELECT count(*) FROM customers"),
	read("multi-statement", "SELECT 1; SELECT name FROM customers; SELECT now() IS NOT NULL"),
	write("multi-statement", "UPDATE orders SET total = 1 WHERE id = 101; DELETE FROM order_items WHERE id = 102; SELECT count(*) FROM order_items"),
	write("multi-statement", "INSERT INTO customers (id, name) VALUES (960, 'm'); SELECT count(*) FROM customers; DELETE FROM customers WHERE name = 'ann'"),
	refused("multi-statement", "UPDATE orders SET total = 0; SELECT * FROM secrets"),
	refused("multi-statement", "SELECT 1; DELETE FROM customers; DROP TABLE orders"),

	// Channels are mapped into the tenant's space (LISTEN is refused in
	// transaction mode: SessionLevel); nothing listens here, so only the
	// results and the rows are compared.
	read("notify", "LISTEN ch; UNLISTEN ch; UNLISTEN *"),
	read("notify", "NOTIFY ch, 'payload'"),
	read("notify", "SELECT pg_notify('ch', name) FROM customers ORDER BY id"),
	read("notify", "SELECT pg_notify('ch_' || id, total::text) FROM orders ORDER BY id"),
	read("notify", "BEGIN; NOTIFY ch; SELECT count(*) FROM orders; COMMIT"),
	refused("notify", "SELECT pg_listening_channels()"),
	refused("notify", "LISTEN channel_name_too_long_for_the_tenant_prefix_x"),
}

// refusals are what the proxy cannot scope: DDL, other statement kinds,
// uncatalogued or system relations, unsafe functions, system columns,
// writes into another tenant.
var refusals = []Statement{
	refused("refused", "SELECT * FROM secrets"),
	refused("refused", "SELECT * FROM public.secrets s JOIN orders o ON true"),
	refused("refused", "SELECT query_to_xml('select * from public.orders', true, true, '')"),
	refused("refused", "SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)"),
	refused("refused", "SELECT set_config('search_path', 'public', false)"),
	refused("refused", "SELECT nextval('public.orders_id_seq')"),
	refused("refused", "SELECT pg_read_file('/etc/passwd')"),
	refused("refused", "SELECT pg_sleep(0)"),
	refused("refused", "SELECT pg_relation_size('orders')"),
	refused("refused", "SELECT current_setting(name) FROM settings"),
	refused("refused", "SELECT * FROM pg_stat_activity"),
	refused("refused", "SELECT * FROM pg_catalog.pg_stats"),
	refused("refused", "SELECT * FROM pg_locks"),
	refused("refused", "SELECT * FROM pg_sequences"),
	refused("refused", "SELECT ctid, * FROM orders"),
	refused("refused", "SELECT xmin, id FROM customers"),
	refused("refused", "SELECT 1 OPERATOR(public.+) 1"),
	refused("refused", "CREATE TABLE x (a int)"),
	refused("refused", "CREATE INDEX ON orders (total)"),
	refused("refused", "ALTER TABLE orders ADD COLUMN x int"),
	refused("refused", "DROP TABLE orders"),
	refused("refused", "TRUNCATE orders"),
	refused("refused", "DO $$ BEGIN DELETE FROM public.orders; END $$"),
	refused("refused", "CALL p()"),
	refused("refused", "CREATE TABLE x AS SELECT * FROM orders"),
	refused("refused", "SELECT * INTO x FROM orders"),
	refused("refused", "ALTER SYSTEM SET work_mem = '1GB'"),
	refused("refused", "LOCK TABLE orders"),
	refused("refused", "VACUUM orders"),
	refused("refused", "GRANT SELECT ON orders TO public"),
	refused("refused", "UPDATE plans SET name = 'x'"),
	refused("refused", "INSERT INTO orders (tenant_id, total) VALUES (3, 1)").only("1", "2"),
	refused("refused", "INSERT INTO orders (tenant_id, total) VALUES (1, 1)").only("2", "3"),
	refused("refused", "UPDATE orders SET tenant_id = 3").only("1", "2"),
	refused("refused", "UPDATE orders SET tenant_id = 1 WHERE id = 201").only("2", "3"),
	refused("refused", "UPDATE orders SET tenant_id = tenant_id + 1"),
	// (A COPY into notes listing order_id waits for rows: e2e's copy tests.)
	refused("refused", "COPY notes (id, body) FROM STDIN"),
	refused("refused", "SELECT * FROM orders TABLESAMPLE SYSTEM (50)"),
	refused("refused", "SELECT xmlelement(name a, name) FROM customers"),
}
