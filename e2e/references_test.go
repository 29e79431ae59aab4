package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// referencesSchema: tasks reference users and projects by plain foreign
// keys (ids of every tenant share one key space); task_watchers is a
// path-bound table (through its task) that references users; milestones'
// key includes the tenant column, so it is safe by construction; subtasks
// reference lists by a key of two columns without it; shared_notes is a
// writable global table that references users; reviews' keys have
// defaults that name rows (20 is tenant 2's user, 1 tenant 1's).
const referencesSchema = `
CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL);
CREATE TABLE projects (id int PRIMARY KEY, tenant_id int NOT NULL, name text NOT NULL, UNIQUE (tenant_id, id));
CREATE TABLE tasks (id int PRIMARY KEY, tenant_id int NOT NULL, project_id int REFERENCES projects, assignee_id int REFERENCES users, title text NOT NULL);
CREATE TABLE task_watchers (task_id int NOT NULL REFERENCES tasks, user_id int REFERENCES users, PRIMARY KEY (task_id, user_id), badge int UNIQUE);
CREATE TABLE milestones (id int PRIMARY KEY, tenant_id int NOT NULL, project_id int NOT NULL, name text NOT NULL,
  FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id));
CREATE TABLE lists (id int PRIMARY KEY, tenant_id int NOT NULL, project_id int NOT NULL, UNIQUE (project_id, id));
CREATE TABLE subtasks (id int PRIMARY KEY, tenant_id int NOT NULL, project_id int, list_id int,
  FOREIGN KEY (project_id, list_id) REFERENCES lists (project_id, id));
CREATE TABLE shared_notes (id int PRIMARY KEY, user_id int REFERENCES users, body text);
CREATE TABLE reviews (id int PRIMARY KEY, tenant_id int NOT NULL, reviewer_id int DEFAULT 20 REFERENCES users, editor_id int DEFAULT 1 REFERENCES users);
`

// referencesRows are every tenant's rows; a tenant's own database holds
// the rows whose tenant_id (or task's) is its own, and the global rows
// (tenant "").
var referencesRows = []struct{ tenant, sql string }{
	{"1", "INSERT INTO users VALUES (1, 1, 'ann'), (2, 1, 'bo')"},
	{"2", "INSERT INTO users VALUES (20, 2, 'cy')"},
	{"1", "INSERT INTO projects VALUES (1, 1, 'apollo')"},
	{"2", "INSERT INTO projects VALUES (14, 2, 'zeus')"},
	{"1", "INSERT INTO tasks VALUES (1, 1, 1, 1, 'launch')"},
	{"2", "INSERT INTO tasks VALUES (30, 2, 14, 20, 'thunder')"},
	{"1", "INSERT INTO task_watchers VALUES (1, 2, 7)"},
	{"1", "INSERT INTO milestones VALUES (1, 1, 1, 'm1')"},
	{"1", "INSERT INTO lists VALUES (1, 1, 1)"},
	{"2", "INSERT INTO lists VALUES (2, 2, 14)"},
	{"1", "INSERT INTO subtasks VALUES (10, 1, 1, 1)"},
	{"", "INSERT INTO shared_notes VALUES (1, NULL, 'hello')"},
	{"1", "INSERT INTO reviews VALUES (1, 1, 2, 1)"},
}

var referencesTables = []catalog.Table{
	{Schema: "public", Name: "users", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "projects", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "tasks", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "task_watchers", Kind: catalog.PathBound, Parent: "public.tasks", Via: "task_id", ParentKey: "id"},
	{Schema: "public", Name: "milestones", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "lists", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "subtasks", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
	{Schema: "public", Name: "shared_notes", Kind: catalog.Global, Writable: true},
	{Schema: "public", Name: "reviews", Kind: catalog.TenantBound, TenantColumn: "tenant_id"},
}

// loadReferences empties the tables and loads the rows of tenant only
// ("": everyone's).
func loadReferences(t *testing.T, conn *pgx.Conn, only string) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "TRUNCATE users, projects, tasks, task_watchers, milestones, lists, subtasks, shared_notes, reviews CASCADE"); err != nil {
		t.Fatal(err)
	}
	for _, r := range referencesRows {
		if only == "" || r.tenant == only || r.tenant == "" {
			if _, err := conn.Exec(ctx, r.sql); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// outcome is a write's result: its command tag, or its error's SQLSTATE,
// message and detail.
func outcome(err error, tag pgconn.CommandTag) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("ERROR %s: %s (%s) [constraint %s, table %s]", pgErr.Code, pgErr.Message, pgErr.Detail, pgErr.ConstraintName, pgErr.TableName)
	}
	if err != nil {
		return "ERROR " + err.Error()
	}
	return tag.String()
}

// dump is every row of the tables, for comparing a tenant's rows.
func dump(t *testing.T, conn *pgx.Conn, tenant string) string {
	t.Helper()
	var b strings.Builder
	queries := []string{
		"SELECT id, tenant_id, project_id, assignee_id, title FROM tasks WHERE tenant_id = " + tenant + " ORDER BY id",
		"SELECT w.task_id, w.user_id, w.badge FROM task_watchers w JOIN tasks t ON t.id = w.task_id WHERE t.tenant_id = " + tenant + " ORDER BY 1, 2",
		"SELECT id, project_id, name FROM milestones WHERE tenant_id = " + tenant + " ORDER BY id",
		"SELECT id, project_id, list_id FROM subtasks WHERE tenant_id = " + tenant + " ORDER BY id",
		"SELECT id, reviewer_id, editor_id FROM reviews WHERE tenant_id = " + tenant + " ORDER BY id",
	}
	if tenant == "1" {
		// The global rows, which the writes of tenant 1 may change.
		queries = append(queries, "SELECT id, user_id, body FROM shared_notes ORDER BY id")
	}
	for _, q := range queries {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, _ := rows.Values()
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// copyTasks is a COPY into tasks that sets both its keys.
const copyTasks = "COPY tasks (id, tenant_id, project_id, assignee_id, title) FROM STDIN"

// TestDifferentialForeignKeys: as tenant 1, writes through every form that
// set a foreign key to another tenant's row get exactly what tenant 1's
// own database gives (23503, its message and detail, nothing changed);
// legitimate references, NULLs and keys that carry the tenant work as
// there; parameters (Bind) are checked the same way.
func TestDifferentialForeignKeys(t *testing.T) {
	e := newEnv(t, envOptions{schema: referencesSchema, tables: referencesTables})
	ctx := context.Background()
	ownDSN := pgtest.NewDatabase(t)
	own, err := pgx.Connect(ctx, ownDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close(ctx)
	// Tenant 1's own database: its rows only, and its tenant as the
	// default, as the proxy fills it.
	if _, err := own.Exec(ctx, referencesSchema+`
ALTER TABLE users ALTER tenant_id SET DEFAULT 1;
ALTER TABLE projects ALTER tenant_id SET DEFAULT 1;
ALTER TABLE tasks ALTER tenant_id SET DEFAULT 1;
ALTER TABLE milestones ALTER tenant_id SET DEFAULT 1;
ALTER TABLE lists ALTER tenant_id SET DEFAULT 1;
ALTER TABLE subtasks ALTER tenant_id SET DEFAULT 1;
ALTER TABLE reviews ALTER tenant_id SET DEFAULT 1;`); err != nil {
		t.Fatal(err)
	}
	shared := e.direct(t)
	proxied := e.connect(t, "1")

	type write struct {
		name, sql string
		args      []any
		copy      string  // COPY ... FROM STDIN: the rows the client sends
		binary    [][]any // pgx's CopyFrom (binary format) into tasks of these rows
		tx        bool    // inside BEGIN ... COMMIT
	}
	writes := []write{
		{name: "UPDATE SET to another tenant's user", sql: "UPDATE tasks SET assignee_id = 20 WHERE id = 1"},
		{name: "UPDATE SET to own user", sql: "UPDATE tasks SET assignee_id = 2 WHERE id = 1"},
		{name: "UPDATE SET NULL", sql: "UPDATE tasks SET assignee_id = NULL WHERE id = 1"},
		{name: "UPDATE SET to a user nobody has", sql: "UPDATE tasks SET assignee_id = 999 WHERE id = 1"},
		{name: "INSERT VALUES another tenant's project", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) VALUES (2, 1, 14, 'x')"},
		{name: "INSERT VALUES own project", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) VALUES (2, 1, 1, 'x')"},
		{name: "INSERT VALUES, tenant filled by the proxy", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (2, 1, 20, 'x')"},
		{name: "INSERT several rows, one bad", sql: "INSERT INTO tasks (id, tenant_id, project_id, assignee_id, title) VALUES (2, 1, 1, 1, 'a'), (3, 1, 1, 20, 'b')"},
		{name: "INSERT ... SELECT another tenant's id", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) SELECT 2, 1, 14, 'x'"},
		{name: "INSERT without a column list", sql: "INSERT INTO tasks VALUES (2, 1, 14, 1, 'x')"},
		{name: "INSERT with a parameter", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) VALUES (2, 1, $1, 'x')", args: []any{14}},
		{name: "INSERT with a good parameter", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) VALUES (2, 1, $1, 'x')", args: []any{1}},
		{name: "UPDATE with a parameter", sql: "UPDATE tasks SET assignee_id = $1 WHERE id = 1", args: []any{20}},
		{name: "ON CONFLICT DO UPDATE to another tenant's user", sql: "INSERT INTO tasks (id, tenant_id, project_id, title) VALUES (1, 1, 1, 'y') ON CONFLICT (id) DO UPDATE SET assignee_id = 20"},
		{name: "ON CONFLICT DO UPDATE from EXCLUDED", sql: "INSERT INTO tasks (id, tenant_id, project_id, assignee_id, title) VALUES (1, 1, 1, 20, 'y') ON CONFLICT (id) DO UPDATE SET assignee_id = EXCLUDED.assignee_id"},
		{name: "MERGE UPDATE", sql: "MERGE INTO tasks t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET assignee_id = 20"},
		{name: "MERGE INSERT", sql: "MERGE INTO tasks t USING (SELECT 5 AS id) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, tenant_id, project_id, title) VALUES (s.id, 1, 14, 'm')"},
		{name: "path-bound table referencing another tenant's user", sql: "INSERT INTO task_watchers (task_id, user_id) VALUES (1, 20)"},
		{name: "path-bound table referencing own user", sql: "INSERT INTO task_watchers (task_id, user_id) VALUES (1, 1)"},
		{name: "path-bound table under another tenant's task", sql: "INSERT INTO task_watchers (task_id, user_id) VALUES (30, 1)"},
		{name: "path-bound table under a task nobody has", sql: "INSERT INTO task_watchers (task_id, user_id) VALUES ($1, 1)", args: []any{999}},
		{name: "path-bound UPDATE moving to another tenant's task", sql: "UPDATE task_watchers SET task_id = 30 WHERE task_id = 1"},
		{name: "path-bound UPDATE to another tenant's user", sql: "UPDATE task_watchers SET user_id = 20 WHERE task_id = 1"},
		{name: "key with the tenant column, other tenant's project", sql: "INSERT INTO milestones (id, tenant_id, project_id, name) VALUES (2, 1, 14, 'x')"},
		{name: "key with the tenant column, own project", sql: "INSERT INTO milestones (id, tenant_id, project_id, name) VALUES (2, 1, 1, 'x')"},
		{name: "two-column key, another tenant's list", sql: "INSERT INTO subtasks (id, tenant_id, project_id, list_id) VALUES (1, 1, 14, 2)"},
		{name: "two-column key, own list", sql: "INSERT INTO subtasks (id, tenant_id, project_id, list_id) VALUES (1, 1, 1, 1)"},
		{name: "two-column key with a NULL", sql: "INSERT INTO subtasks (id, tenant_id, project_id, list_id) VALUES (1, 1, NULL, 2)"},
		{name: "two-column key from parameters", sql: "INSERT INTO subtasks (id, project_id, list_id) VALUES (1, $1, $2)", args: []any{14, 2}},
		{name: "two-column key from good parameters", sql: "INSERT INTO subtasks (id, project_id, list_id) VALUES (1, $1, $2)", args: []any{1, 1}},
		{name: "two-column key, UPDATE of one column to a key nobody has", sql: "UPDATE subtasks SET list_id = 2 WHERE id = 10"},
		{name: "two-column key, UPDATE of both to another tenant's list", sql: "UPDATE subtasks SET project_id = 14, list_id = 2 WHERE id = 10"},
		{name: "two-column key, UPDATE with parameters", sql: "UPDATE subtasks s SET list_id = $2, project_id = $1 WHERE id = 10", args: []any{14, 2}},
		{name: "two-column key, INSERT ... SELECT of another tenant's", sql: "INSERT INTO subtasks (id, project_id, list_id) SELECT 1, v.p, v.l FROM (VALUES (14, 2)) v (p, l)"},
		{name: "two-column key, INSERT ... SELECT from the referenced table itself", sql: "INSERT INTO subtasks (id, project_id, list_id) SELECT 1, lists.project_id, lists.id FROM lists"},
		{name: "two-column key, ON CONFLICT DO UPDATE", sql: "INSERT INTO subtasks (id, project_id, list_id) VALUES (10, 1, 1) ON CONFLICT (id) DO UPDATE SET project_id = 14, list_id = 2"},
		{name: "COPY with a two-column key of another tenant's list", sql: "COPY subtasks (id, project_id, list_id) FROM STDIN", copy: "1\t1\t1\n2\t14\t2\n"},
		{name: "COPY with two-column keys of own lists and NULLs", sql: "COPY subtasks (list_id, id, project_id) FROM STDIN (FORMAT csv)", copy: "1,1,1\n2,2,\n1,3,1\n"},
		{name: "global table, INSERT naming another tenant's user", sql: "INSERT INTO shared_notes (id, user_id, body) VALUES (2, 20, 'x')"},
		{name: "global table, INSERT naming own user", sql: "INSERT INTO shared_notes VALUES (2, 1, 'x')"},
		{name: "global table, UPDATE to another tenant's user", sql: "UPDATE shared_notes SET user_id = $1 WHERE id = 1", args: []any{20}},
		{name: "global table, ON CONFLICT DO UPDATE to another tenant's user", sql: "INSERT INTO shared_notes (id, body) VALUES (1, 'y') ON CONFLICT (id) DO UPDATE SET user_id = 20"},
		{name: "global table, COPY naming another tenant's user", sql: "COPY shared_notes (id, user_id) FROM STDIN", copy: "2\t1\n3\t20\n"},
		{name: "global table, COPY of rows without the key", sql: "COPY shared_notes (id, body) FROM STDIN", copy: "2\ta\n"},
		{name: "a default naming another tenant's user", sql: "INSERT INTO reviews (id, editor_id) VALUES (2, 2)"},
		{name: "a default naming own user", sql: "INSERT INTO reviews (id, reviewer_id) VALUES (2, 2)"},
		{name: "DEFAULT naming another tenant's user", sql: "INSERT INTO reviews (id, reviewer_id, editor_id) VALUES (2, DEFAULT, DEFAULT)"},
		{name: "UPDATE SET DEFAULT naming another tenant's user", sql: "UPDATE reviews SET reviewer_id = DEFAULT WHERE id = 1"},
		{name: "UPDATE SET DEFAULT naming own user", sql: "UPDATE reviews SET editor_id = DEFAULT WHERE id = 1"},
		{name: "DEFAULT VALUES naming another tenant's user", sql: "INSERT INTO reviews (id) SELECT 3"},
		{name: "COPY into the path-bound table under own tasks", sql: "COPY task_watchers (task_id, user_id) FROM STDIN", copy: "1\t1\n1\t\\N\n"},
		{name: "COPY into the path-bound table under another tenant's task", sql: "COPY task_watchers (user_id, task_id) FROM STDIN", copy: "1\t1\n2\t30\n"},
		{name: "COPY into the path-bound table naming another tenant's user", sql: "COPY task_watchers (task_id, user_id) FROM STDIN (FORMAT csv)", copy: "1,20\n"},
		{name: "COPY into the path-bound table without a task", sql: "COPY task_watchers (task_id, user_id) FROM STDIN", copy: "\\N\t1\n"},
		{name: "COPY a row naming another tenant's user", sql: copyTasks, copy: "2\t1\t1\t20\tx\n"},
		{name: "COPY rows naming own rows and NULL", sql: copyTasks, copy: "2\t1\t1\t2\ta\n3\t1\t\\N\t\\N\tb\n"},
		{name: "COPY rows, the second and third bad", sql: copyTasks, copy: "2\t1\t1\t1\ta\n3\t1\t14\t1\tb\n4\t1\t1\t20\tc\n"},
		{name: "COPY a row naming a user nobody has", sql: copyTasks, copy: "2\t1\t1\t999\tx\n"},
		{name: "COPY a bad key, then a row Postgres cannot read", sql: copyTasks, copy: "2\t1\t1\t20\tx\n3\t1\tbad\t1\ty\n"},
		{name: "COPY CSV, tenant filled by the proxy", sql: "COPY tasks (id, project_id, assignee_id, title) FROM STDIN (FORMAT csv)", copy: "2,1,\"20\",x\n3,1,1,y\n"},
		{name: "COPY in a transaction, naming another tenant's user", sql: copyTasks, copy: "2\t1\t1\t20\tx\n", tx: true},
		{name: "COPY in a transaction, own rows", sql: copyTasks, copy: "2\t1\t1\t2\tx\n", tx: true},
		{name: "pgx CopyFrom (binary) naming another tenant's project", binary: [][]any{{2, 1, 1, 1, "a"}, {3, 1, 14, nil, "b"}}},
		{name: "pgx CopyFrom (binary) of good rows", binary: [][]any{{2, 1, 1, 1, "a"}, {3, 1, nil, 2, "b"}}},
		// INSERT ... ON CONFLICT: a proposed row an existing row of the
		// tenant's matches on an arbiter key is not inserted, so its keys
		// are not checked, as on the own database.
		{name: "ON CONFLICT DO NOTHING, the row conflicts and names another tenant's user", sql: "INSERT INTO tasks (id, tenant_id, project_id, assignee_id, title) VALUES (1, 1, 1, 20, 'x') ON CONFLICT DO NOTHING"},
		{name: "ON CONFLICT (id) DO NOTHING, the row conflicts and names a user nobody has", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 999, 'x') ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT ON CONSTRAINT, the row conflicts", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 14, 20, 'x') ON CONFLICT ON CONSTRAINT tasks_pkey DO NOTHING"},
		{name: "ON CONFLICT DO NOTHING, the row does not conflict", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (2, 1, 20, 'x') ON CONFLICT DO NOTHING"},
		{name: "ON CONFLICT DO NOTHING, one row conflicts, one is new", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'x'), (2, 1, 2, 'y') ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT DO NOTHING, one row conflicts, the new one names another tenant's project", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'x'), (2, 14, 2, 'y') ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT DO NOTHING with another tenant's row of that id", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (30, 1, 20, 'x') ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT DO NOTHING from parameters, the row conflicts", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES ($1, 1, $2, 'p') ON CONFLICT (id) DO NOTHING", args: []any{1, 20}},
		{name: "ON CONFLICT DO NOTHING from a SELECT, the row conflicts", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) SELECT v.id, 1, 20, 'x' FROM (VALUES (1)) v (id) ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT DO UPDATE of the title, the row names another tenant's user", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'new') ON CONFLICT (id) DO UPDATE SET title = excluded.title"},
		{name: "ON CONFLICT DO UPDATE taking the proposed user", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'new') ON CONFLICT (id) DO UPDATE SET assignee_id = excluded.assignee_id"},
		{name: "ON CONFLICT DO UPDATE of the key itself", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'new') ON CONFLICT (id) DO UPDATE SET id = 3"},
		{name: "ON CONFLICT DO NOTHING in a transaction, the row conflicts", sql: "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, 20, 'x') ON CONFLICT DO NOTHING", tx: true},
		{name: "ON CONFLICT, a two-column key of another tenant's list, the row conflicts", sql: "INSERT INTO subtasks (id, project_id, list_id) VALUES (10, 14, 2) ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT on the path-bound table, another tenant's user", sql: "INSERT INTO task_watchers (task_id, user_id) VALUES (1, 20) ON CONFLICT DO NOTHING"},
		{name: "ON CONFLICT on the path-bound table, under another tenant's task, the row conflicts", sql: "INSERT INTO task_watchers (task_id, user_id, badge) VALUES (30, 1, 7) ON CONFLICT (badge) DO NOTHING"},
		{name: "ON CONFLICT on the path-bound table, under another tenant's task and user, the row conflicts", sql: "INSERT INTO task_watchers (task_id, user_id, badge) VALUES (30, 20, 7) ON CONFLICT DO NOTHING"},
		{name: "ON CONFLICT on the path-bound table, without a task, the row conflicts", sql: "INSERT INTO task_watchers (task_id, user_id, badge) VALUES (NULL, 1, 7) ON CONFLICT (badge) DO NOTHING"},
		{name: "ON CONFLICT on the path-bound table, under another tenant's task, the row is new", sql: "INSERT INTO task_watchers (task_id, user_id, badge) VALUES (30, 1, 8) ON CONFLICT (badge) DO NOTHING"},
		{name: "ON CONFLICT DO UPDATE on the path-bound table, under another tenant's task", sql: "INSERT INTO task_watchers (task_id, user_id, badge) VALUES (30, 1, 7) ON CONFLICT (badge) DO UPDATE SET user_id = 1"},
		{name: "ON CONFLICT on the global table, the row conflicts", sql: "INSERT INTO shared_notes (id, user_id, body) VALUES (1, 20, 'x') ON CONFLICT (id) DO NOTHING"},
		{name: "ON CONFLICT on the global table, the row is new", sql: "INSERT INTO shared_notes (id, user_id, body) VALUES (2, 20, 'x') ON CONFLICT (id) DO NOTHING"},
		{name: "INSERT naming another tenant's project and user", sql: "INSERT INTO tasks (id, tenant_id, project_id, assignee_id, title) VALUES (2, 1, 14, 20, 'x')"},
		{name: "COPY a row naming another tenant's project and user", sql: copyTasks, copy: "2\t1\t14\t20\tx\n"},
		{name: "UPDATE naming another tenant's project and user", sql: "UPDATE tasks SET assignee_id = 20, project_id = 14 WHERE id = 1"},
		{name: "COPY CSV of good rows, the same key twice", sql: "COPY tasks (id, project_id, assignee_id, title) FROM STDIN (FORMAT csv)", copy: "2,1,1,x\n3,1,1,y\n4,1,,z\n"},
	}
	counts := map[string]int{}
	for _, w := range writes {
		loadReferences(t, shared, "")
		loadReferences(t, own, "1")
		othersBefore := dump(t, shared, "2")
		run := func(c *pgx.Conn) string {
			if w.tx {
				if _, err := c.Exec(ctx, "BEGIN"); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if _, err := c.Exec(ctx, "COMMIT"); err != nil {
						t.Fatal(err)
					}
				}()
			}
			if w.binary != nil {
				n, err := c.CopyFrom(ctx, pgx.Identifier{"tasks"}, []string{"id", "tenant_id", "project_id", "assignee_id", "title"}, pgx.CopyFromRows(w.binary))
				return outcome(err, pgconn.NewCommandTag(fmt.Sprintf("COPY %d", n)))
			}
			if w.copy != "" {
				tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(w.copy), w.sql)
				return outcome(err, tag)
			}
			tag, err := c.Exec(ctx, w.sql, w.args...)
			return outcome(err, tag)
		}
		got, want := run(proxied), run(own)
		switch {
		case got != want:
			t.Errorf("%s: %s\nthrough the proxy: %s\nown database:      %s", w.name, w.sql, got, want)
		case dump(t, shared, "1") != dump(t, own, "1"):
			t.Errorf("%s: the tenant's rows differ after the write\nshared:\n%s\nown:\n%s", w.name, dump(t, shared, "1"), dump(t, own, "1"))
		case dump(t, shared, "2") != othersBefore:
			t.Errorf("%s: another tenant's rows changed", w.name)
		}
		switch {
		case strings.Contains(want, "23503"):
			counts["23503 as on the own database"]++
		case strings.HasPrefix(want, "ERROR"):
			counts["another error as on the own database"]++
		default:
			counts["accepted as on the own database"]++
		}
	}
	t.Logf("%d writes: %v", len(writes), counts)
	// Pipelined: the next COPY with checked keys sent right after CopyDone,
	// before the first's answer; each gets its own.
	loadReferences(t, shared, "")
	r := e.raw(t, "1")
	copyIn := func() {
		t.Helper()
		_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			msg, err := r.fe.Receive()
			if err != nil {
				t.Fatalf("waiting for CopyInResponse: %v", err)
			}
			switch m := msg.(type) {
			case *pgproto3.CopyInResponse:
				return
			case *pgproto3.ErrorResponse:
				t.Fatalf("waiting for CopyInResponse: %s %s", m.Code, m.Message)
			}
		}
	}
	r.send(&pgproto3.Query{String: copyTasks})
	copyIn()
	r.send(&pgproto3.CopyData{Data: []byte("2\t1\t1\t1\ta\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: copyTasks})
	wantMessages(t, r.until(), "CommandComplete COPY 1", "ReadyForQuery I")
	copyIn()
	r.send(&pgproto3.CopyData{Data: []byte("3\t1\t1\t20\tb\n")}, &pgproto3.CopyDone{})
	wantMessages(t, r.until(), "Error 23503", "ReadyForQuery I")

	// The catalog check tells the keys apart.
	out := e.cli(t, "catalog", "check")
	for _, want := range []string{"tasks_assignee_id_fkey", "guarded", "milestones_tenant_id_project_id_fkey", "safe"} {
		if !strings.Contains(out, want) {
			t.Errorf("catalog check does not mention %q:\n%s", want, out)
		}
	}
}

// A proposed row that ON CONFLICT does not insert passes its guard only
// with the matching row locked FOR KEY SHARE until the transaction ends:
// nobody can delete that row, or change its key, before the INSERT reaches
// it. Other changes go on; a row whose keys are the tenant's takes no
// lock at all.
func TestConflictArmLocksTheMatchingRow(t *testing.T) {
	e := newEnv(t, envOptions{schema: referencesSchema, tables: referencesTables})
	ctx := context.Background()
	other := e.direct(t)
	loadReferences(t, other, "")
	if _, err := other.Exec(ctx, "DELETE FROM task_watchers; SET lock_timeout = '200ms'"); err != nil {
		t.Fatal(err)
	}
	proxied := e.connect(t, "1")
	insert := func(assignee int) {
		t.Helper()
		tag, err := proxied.Exec(ctx, "INSERT INTO tasks (id, project_id, assignee_id, title) VALUES (1, 1, $1, 'x') ON CONFLICT (id) DO NOTHING", assignee)
		if err != nil || tag.String() != "INSERT 0 0" {
			t.Fatalf("INSERT naming user %d: %v %v", assignee, tag, err)
		}
	}
	exec := func(conn *pgx.Conn, sql string) error {
		_, err := conn.Exec(ctx, sql)
		return err
	}
	// The tenant's own user: the guard's key lookup passes, nothing locked.
	if err := exec(proxied, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	insert(2)
	if err := exec(other, "UPDATE tasks SET id = 5 WHERE id = 1"); err != nil {
		t.Fatalf("a row matched by a good key was locked: %v", err)
	}
	if err := exec(proxied, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := exec(other, "UPDATE tasks SET id = 1 WHERE id = 5"); err != nil {
		t.Fatal(err)
	}
	// Another tenant's user: passed because task 1 matches, locked.
	if err := exec(proxied, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	insert(20)
	for _, sql := range []string{"DELETE FROM tasks WHERE id = 1", "UPDATE tasks SET id = 5 WHERE id = 1"} {
		var pgErr *pgconn.PgError
		if err := exec(other, sql); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			t.Errorf("%s while the INSERT's transaction is open: %v, want lock_timeout (55P03)", sql, err)
		}
	}
	if err := exec(other, "UPDATE tasks SET title = 'still free' WHERE id = 1"); err != nil {
		t.Errorf("a change of no key column was blocked: %v", err)
	}
	if err := exec(proxied, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := exec(other, "DELETE FROM tasks WHERE id = 1"); err != nil {
		t.Errorf("DELETE after the INSERT's transaction: %v", err)
	}
}
