package rewrite_test

import (
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"

	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// referencesCatalog: tasks reference users and projects by plain keys,
// milestones by a key that includes the tenant, watchers (path-bound
// through tasks) reference users, tags reference an uncatalogued table,
// and links have a two-column key to projects.
func referencesCatalog() *catalog.Snapshot {
	cols := func(names ...string) []catalog.Column {
		out := make([]catalog.Column, len(names))
		for i, n := range names {
			out[i] = catalog.Column{Name: n, Type: "integer"}
		}
		return out
	}
	fk := func(name string, cols []string, ref string, refCols []string) catalog.ForeignKey {
		return catalog.ForeignKey{Name: name, Columns: cols, RefSchema: "public", RefName: ref, RefColumns: refCols}
	}
	return catalog.MustSnapshot(3,
		catalog.Table{Schema: "public", Name: "users", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id")},
		catalog.Table{Schema: "public", Name: "projects", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id")},
		catalog.Table{Schema: "public", Name: "tasks", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "project_id", "assignee_id", "tag_id"),
			ForeignKeys: []catalog.ForeignKey{
				fk("tasks_project_id_fkey", []string{"project_id"}, "projects", []string{"id"}),
				fk("tasks_assignee_id_fkey", []string{"assignee_id"}, "users", []string{"id"}),
				fk("tasks_tag_id_fkey", []string{"tag_id"}, "tags", []string{"id"}),
			},
			UniqueKeys: []catalog.UniqueKey{
				{Index: "tasks_pkey", Constraint: "tasks_pkey", Columns: []string{"id"}, Plain: true},
				{Index: "tasks_project_id_key", Columns: []string{"tenant_id", "project_id"}, Plain: true},
				{Index: "tasks_lower_key"},
				{Index: "tasks_tenant_id_id_key", Constraint: "tasks_tenant_id_id_key", Columns: []string{"tenant_id", "id"}, Plain: true},
				{Index: "tasks_id_ci_key", Constraint: "tasks_id_ci_key", Columns: []string{"id"}},
			}},
		catalog.Table{Schema: "public", Name: "milestones", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "project_id"),
			ForeignKeys: []catalog.ForeignKey{fk("milestones_fkey", []string{"tenant_id", "project_id"}, "projects", []string{"tenant_id", "id"})}},
		catalog.Table{Schema: "public", Name: "links", Kind: catalog.TenantBound, TenantColumn: "tenant_id", Columns: cols("id", "tenant_id", "a", "b"),
			ForeignKeys: []catalog.ForeignKey{fk("links_fkey", []string{"a", "b"}, "projects", []string{"id", "tenant_id"})}},
		catalog.Table{Schema: "public", Name: "dflt", Kind: catalog.TenantBound, TenantColumn: "tenant_id",
			Columns: append(cols("id", "tenant_id"), catalog.Column{Name: "owner_id", Type: "integer", Default: "20"}, catalog.Column{Name: "editor_id", Type: "integer", Default: "NULL::integer"}),
			ForeignKeys: []catalog.ForeignKey{
				fk("dflt_owner_id_fkey", []string{"owner_id"}, "users", []string{"id"}),
				fk("dflt_editor_id_fkey", []string{"editor_id"}, "users", []string{"id"}),
			}},
		catalog.Table{Schema: "public", Name: "dflt2", Kind: catalog.TenantBound, TenantColumn: "tenant_id",
			Columns:     append(cols("id", "tenant_id"), catalog.Column{Name: "owner_id", Type: "integer", Default: "nextval('owners'::regclass)"}),
			ForeignKeys: []catalog.ForeignKey{fk("dflt2_owner_id_fkey", []string{"owner_id"}, "users", []string{"id"})}},
		catalog.Table{Schema: "public", Name: "shared", Kind: catalog.Global, Writable: true, Columns: cols("id", "user_id"),
			ForeignKeys: []catalog.ForeignKey{fk("shared_user_id_fkey", []string{"user_id"}, "users", []string{"id"})},
			UniqueKeys:  []catalog.UniqueKey{{Index: "shared_pkey", Constraint: "shared_pkey", Columns: []string{"id"}, Plain: true}}},
		catalog.Table{Schema: "public", Name: "watchers", Kind: catalog.PathBound, Parent: "public.tasks", Via: "task_id", ParentKey: "id", Columns: cols("task_id", "user_id", "badge"),
			UniqueKeys: []catalog.UniqueKey{{Index: "watchers_badge_key", Constraint: "watchers_badge_key", Columns: []string{"badge"}, Plain: true}},
			ForeignKeys: []catalog.ForeignKey{
				fk("watchers_task_id_fkey", []string{"task_id"}, "tasks", []string{"id"}),
				fk("watchers_user_id_fkey", []string{"user_id"}, "users", []string{"id"}),
			}},
	)
}

// The catalog sorts keys: plain keys to bound tables are guarded, a key
// with the tenant column is safe, a path's own key is the path's.
func TestReferenceStanding(t *testing.T) {
	snap := referencesCatalog()
	want := map[string]string{
		"tasks_project_id_fkey": catalog.RefGuarded, "tasks_assignee_id_fkey": catalog.RefGuarded, "tasks_tag_id_fkey": catalog.RefUncatalogued,
		"milestones_fkey": catalog.RefSafe, "links_fkey": catalog.RefGuarded,
		"watchers_task_id_fkey": catalog.RefPath, "watchers_user_id_fkey": catalog.RefGuarded, "shared_user_id_fkey": catalog.RefGuarded,
		"dflt_owner_id_fkey": catalog.RefGuarded, "dflt_editor_id_fkey": catalog.RefGuarded, "dflt2_owner_id_fkey": catalog.RefGuarded,
	}
	for _, tbl := range snap.Tables() {
		for _, r := range snap.References(tbl) {
			if want[r.Key.Name] != r.Status {
				t.Errorf("%s: %s, want %s", r.Key.Name, r.Status, want[r.Key.Name])
			}
		}
	}
}

// Every write form that sets a guarded key gets the guard (and passes the
// verifier, which Rewrite runs); what cannot be guarded yet is refused; a
// safe key, DEFAULT and columns left out are left alone.
func TestReferenceGuards(t *testing.T) {
	snap := referencesCatalog()
	r := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	scope := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	cache, err := rewrite.NewCache(r, 100)
	if err != nil {
		t.Fatal(err)
	}
	guard := "WHEN EXISTS (SELECT 1 FROM public.users tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN"
	for _, tc := range []struct{ sql, want, reject string }{
		{sql: "UPDATE tasks SET assignee_id = 20 WHERE id = 1", want: guard},
		{sql: "UPDATE tasks SET assignee_id = $1 WHERE id = 1", want: guard},
		{sql: "UPDATE tasks SET assignee_id = DEFAULT WHERE id = 1", want: "assignee_id = DEFAULT"},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20), (2, 21)", want: guard},
		{sql: "INSERT INTO tasks (id, assignee_id) SELECT 1, 20", want: guard},
		{sql: "INSERT INTO tasks VALUES (1, 1, 2, 3)", want: "tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1'"},
		{sql: "INSERT INTO tasks VALUES (1, 1, 2, 3, NULL)", reject: "a table the catalog does not list"},
		{sql: "INSERT INTO tasks (id) VALUES (1)", want: "INSERT INTO public.tasks (id, tenant_id) VALUES (1, '1')"},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET assignee_id = 20", want: guard},
		{sql: "MERGE INTO tasks t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET assignee_id = 20 WHEN NOT MATCHED THEN INSERT (id, assignee_id) VALUES (s.id, 20)", want: guard},
		{sql: "INSERT INTO watchers (task_id, user_id) VALUES (1, 20)", want: guard},
		{sql: "UPDATE watchers SET user_id = 20", want: guard},
		{sql: "INSERT INTO milestones (id, project_id) VALUES (1, 14)", want: "INSERT INTO public.milestones (id, project_id, tenant_id) VALUES (1, 14, '1')"},
		{sql: "UPDATE tasks SET tag_id = 3", reject: "a table the catalog does not list"},
		{sql: "INSERT INTO links (id, a, b) VALUES (1, 2, 1)", want: "WHEN tenantproxy_guard.v IS NULL OR 1::int IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.projects tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = 1::int AND tenantproxy_ref.tenant_id = '1') THEN"},
		{sql: "INSERT INTO links (id, a, b) VALUES (1, 2, $1)", want: "tenantproxy_ref.tenant_id = $1::int"},
		{sql: "INSERT INTO links (id, a, b) SELECT v.x, v.y, v.z FROM (VALUES (1, 2, 3)) v (x, y, z)", want: "tenantproxy_ref.tenant_id = v.z::int"},
		// Inside the guard, a bare name could mean the looked-up table's
		// column (tenant_id = tenant_id), and the proxy's names its own.
		{sql: "INSERT INTO links (id, a, b) SELECT x, y, tenant_id FROM (VALUES (1, 2, 3)) v (x, y, tenant_id)", reject: "a column not written as table.column"},
		{sql: "INSERT INTO links (id, a, b) SELECT 1, 2, tenantproxy_ref.tenant_id FROM (VALUES (3)) tenantproxy_ref (tenant_id)", reject: "a name the proxy reserves"},
		{sql: "INSERT INTO links (id, a, b) SELECT 1, 2, tenantproxy_guard.v FROM (VALUES (3)) tenantproxy_guard (v)", reject: "a name the proxy reserves"},
		{sql: "INSERT INTO links (id, a, b) SELECT 1, 2, public.v.z FROM (VALUES (3)) v (z)", reject: "a column not written as table.column"},
		{sql: "INSERT INTO links (id, a) VALUES (1, 2)", reject: "sets only part of foreign key links_fkey"},
		{sql: "INSERT INTO links (id, a, b) VALUES (1, 2, 1 + 1)", reject: "an expression, which the proxy cannot read twice"},
		{sql: "INSERT INTO links (id, a, b) VALUES (1, DEFAULT, 1)", reject: "to DEFAULT"},
		{sql: "UPDATE links SET a = 2", want: "tenantproxy_ref.tenant_id = links.b::int"},
		{sql: "UPDATE links l SET b = 5", want: "WHEN l.a::int IS NULL OR tenantproxy_guard.v IS NULL THEN"},
		{sql: "UPDATE links SET b = 5, a = $1", want: "tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = 5::int"},
		{sql: "UPDATE links SET a = random()::int", want: "tenantproxy_ref.tenant_id = links.b::int"},
		{sql: "UPDATE links SET a = 2, b = random()::int", reject: "an expression, which the proxy cannot read twice"},
		{sql: "UPDATE tasks SET (assignee_id, project_id) = (SELECT 1, 2)", reject: "this way"},
		{sql: "INSERT INTO tasks (id, assignee_id) SELECT 1, 2 UNION SELECT 3, 4", reject: "does not show which value goes into assignee_id"},
		{sql: "COPY tasks (id, assignee_id, project_id) FROM STDIN", want: "; COPY pg_temp.tenantproxy_copy_keys (n, c, v0, v1) FROM STDIN (FORMAT text, DELIMITER '	', NULL '\\N'); SELECT count(ROW((SELECT CASE WHEN tenantproxy_guard.v IS NULL"},
		{sql: "COPY tasks (id, assignee_id) FROM STDIN (FORMAT csv)", want: "WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN"},
		{sql: "COPY tasks (id, title) FROM STDIN", want: "COPY public.tasks(id, title, tenant_id) FROM STDIN"},
		{sql: "COPY tasks (id, assignee_id) FROM STDIN (FORMAT binary)", want: "COPY pg_temp.tenantproxy_copy_keys (n, c, v0) FROM STDIN (FORMAT binary)"},
		{sql: "COPY tasks (id, assignee_id) FROM STDIN (FORMAT csv, FORCE_NULL (assignee_id))", reject: "FORCE_NULL"},
		{sql: "COPY tasks (id, tag_id) FROM STDIN", reject: "a table the catalog does not list"},
		{sql: "COPY links (id, a, b) FROM STDIN", want: "tenantproxy_copy_keys (n, c, v0, v0_1) FROM STDIN"},
		{sql: "COPY links (id, b, a) FROM STDIN (FORMAT csv)", want: "tenantproxy_ref.tenant_id = tenantproxy_copy_keys.v0_1::int"},
		{sql: "COPY links (id, a) FROM STDIN", reject: "sets only part of foreign key links_fkey"},
		{sql: "INSERT INTO shared (id, user_id) VALUES (1, 20)", want: guard},
		{sql: "INSERT INTO dflt (id) VALUES (1)", want: "INSERT INTO public.dflt (id, tenant_id, owner_id) VALUES (1, '1', (SELECT CASE WHEN tenantproxy_guard.v IS NULL"},
		{sql: "INSERT INTO dflt (id) SELECT 1", want: "SELECT 1, '1', (SELECT CASE WHEN tenantproxy_guard.v IS NULL"},
		{sql: "INSERT INTO dflt (id, owner_id) VALUES (1, DEFAULT)", want: "FROM (SELECT 20::int AS v) tenantproxy_guard"},
		{sql: "UPDATE dflt SET owner_id = DEFAULT", want: "FROM (SELECT 20::int AS v) tenantproxy_guard"},
		{sql: "UPDATE dflt SET editor_id = DEFAULT", want: "editor_id = DEFAULT"},
		{sql: "INSERT INTO dflt DEFAULT VALUES", want: "INSERT INTO public.dflt (tenant_id, owner_id) VALUES ('1', (SELECT CASE"},
		{sql: "INSERT INTO dflt2 (id) VALUES (1)", reject: "which the proxy cannot check"},
		{sql: "COPY dflt (id) FROM STDIN", reject: "defaults that name a row"},
		{sql: "COPY watchers (task_id, user_id) FROM STDIN", want: "SELECT count(ROW(CASE WHEN tenantproxy_copy_keys.c = 0 THEN (SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL THEN"},
		{sql: "COPY watchers (user_id) FROM STDIN", reject: "must send task_id"},
		{sql: "UPDATE shared SET user_id = 20", want: guard},
		{sql: "INSERT INTO shared (id, user_id) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET user_id = 20", want: guard},
		{sql: "MERGE INTO shared t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET user_id = 20 WHEN NOT MATCHED THEN INSERT (id, user_id) VALUES (s.id, 20)", want: guard},
		{sql: "COPY shared (id, user_id) FROM STDIN", want: "COPY pg_temp.tenantproxy_copy_keys (n, c, v0) FROM STDIN"},
		{sql: "COPY shared (id) FROM STDIN", want: "COPY public.shared(id) FROM STDIN"},
		{sql: "UPDATE shared SET id = 2", want: "UPDATE public.shared SET id = 2"},
	} {
		res, err := r.Rewrite(tc.sql, scope, snap)
		switch {
		case tc.reject != "":
			if err == nil || !strings.Contains(err.Error(), tc.reject) {
				t.Errorf("%s: %v, want a refusal about %q", tc.sql, err, tc.reject)
			}
		case err != nil:
			t.Errorf("%s: refused: %v", tc.sql, err)
		case !strings.Contains(res.SQL, tc.want):
			t.Errorf("%s:\n%s\nwants %q", tc.sql, res.SQL, tc.want)
		}
		// The cache gives the same, for this and for other constants.
		for _, sql := range []string{tc.sql, strings.ReplaceAll(tc.sql, "20", "77")} {
			want, werr := r.Rewrite(sql, scope, snap)
			for range 2 {
				got, gerr := cache.Rewrite(sql, scope, snap)
				if (werr == nil) != (gerr == nil) || werr == nil && got.SQL != want.SQL {
					t.Errorf("%s: cached %v %v, uncached %v %v", sql, got, gerr, want, werr)
				}
			}
		}
	}
}

// The verifier refuses a write of a guarded key that is not guarded, or
// whose guard reads the wrong table or lets any value through.
func TestVerifierRequiresReferenceGuards(t *testing.T) {
	p := verify.Policy{Tenants: map[string][]string{"": {"1"}}, SearchPath: []string{"public"}, Snapshot: referencesCatalog()}
	good := "UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.users tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'"
	if err := verify.Check(good, p); err != nil {
		t.Fatalf("the guard's own shape is refused: %v", err)
	}
	for _, sql := range []string{
		"UPDATE public.tasks SET assignee_id = 20 WHERE tasks.tenant_id = '1'",
		"INSERT INTO public.tasks (id, assignee_id, tenant_id) VALUES (1, 20, '1')",
		"UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.projects tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'",
		"UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.users tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v ELSE tenantproxy_guard.v END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'",
		"UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.users WHERE users.id = tenantproxy_guard.v) THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'",
		"UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.users WHERE users.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'",
		"UPDATE public.tasks SET assignee_id = (SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.users WHERE users.id = tenantproxy_guard.v OR users.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 20::int AS v) tenantproxy_guard) WHERE tasks.tenant_id = '1'",
		"UPDATE public.tasks SET tag_id = 3 WHERE tasks.tenant_id = '1'",
		// Keys of several columns: the guard must read what the row gets.
		compositeGuard("1::int IS NULL", "tenantproxy_ref.tenant_id = 7::int", "1"),
		compositeGuard("1::int IS NULL", "true", "1"),
		compositeGuard("false", "tenantproxy_ref.tenant_id = 1::int", "1"),
		compositeGuard("1::int IS NULL", "tenantproxy_ref.tenant_id = 1::int", "1 + 0"),
		// ... and read it where no name of the guard's can capture it.
		compositeGuard("tenant_id::int IS NULL", "tenantproxy_ref.tenant_id = tenant_id::int", "tenant_id"),
		compositeGuard("tenantproxy_ref.tenant_id::int IS NULL", "tenantproxy_ref.tenant_id = tenantproxy_ref.tenant_id::int", "tenantproxy_ref.tenant_id"),
		compositeGuard("tenantproxy_guard.v::int IS NULL", "tenantproxy_ref.tenant_id = tenantproxy_guard.v::int", "tenantproxy_guard.v"),
		compositeGuard("random()::int IS NULL", "tenantproxy_ref.tenant_id = random()::int", "random()"),
		strings.ReplaceAll(compositeGuard("projects.tenant_id::int IS NULL", "tenantproxy_ref.tenant_id = projects.tenant_id::int", "projects.tenant_id"), "tenantproxy_ref", "projects"),
		"INSERT INTO public.links (id, a, tenant_id) VALUES (1, 2, '1')",
		"INSERT INTO public.shared (id, user_id) VALUES (1, 20)",
		"UPDATE public.shared SET user_id = 20",
		"INSERT INTO public.dflt (id, tenant_id) VALUES (1, '1')",
		"UPDATE public.dflt SET owner_id = DEFAULT WHERE dflt.tenant_id = '1'",
	} {
		if err := verify.Check(sql, p); err == nil {
			t.Errorf("accepted: %s", sql)
		}
	}
}

// A guard's error reads back as the violation Postgres reports on the
// tenant's own database.
func TestParseFKViolation(t *testing.T) {
	snap := referencesCatalog()
	res, err := rewrite.New(rewrite.Config{SearchPath: []string{"public"}}).Rewrite("UPDATE tasks SET assignee_id = 20", rewrite.Scope{Values: map[string][]string{"": {"1"}}}, snap)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(res.SQL, "'"+rewrite.FKMarker)
	j := strings.Index(res.SQL[i+1:], "'")
	msg := `invalid input syntax for type integer: "` + res.SQL[i+1:i+1+j] + `20"`
	v, ok := rewrite.ParseFKViolation(msg)
	if !ok {
		t.Fatalf("not read back: %s", msg)
	}
	if v.Message() != `insert or update on table "tasks" violates foreign key constraint "tasks_assignee_id_fkey"` ||
		v.Detail() != `Key (assignee_id)=(20) is not present in table "users".` || v.Schema != "public" {
		t.Fatalf("%+v: %s / %s", v, v.Message(), v.Detail())
	}
	for _, bad := range []string{"", `invalid input syntax for type integer: "tenantproxy_fk:zz:1"`, `x "tenantproxy_fk:` + "00" + `:1"`} {
		if _, ok := rewrite.ParseFKViolation(bad); ok {
			t.Errorf("read %q as a violation", bad)
		}
	}
}

// compositeGuard is an INSERT into links (key (a, b) to projects (id,
// tenant_id)) whose guard of a tests the other column with otherNull and
// looks it up with otherKey, while the row writes b.
func compositeGuard(otherNull, otherKey, b string) string {
	return "INSERT INTO public.links (id, a, b, tenant_id) VALUES (1, (SELECT CASE WHEN tenantproxy_guard.v IS NULL OR " + otherNull +
		" THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.projects tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND " + otherKey +
		" AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT 2::int AS v) tenantproxy_guard), " + b + ", '1')"
}

// The verifier accepts a guard of a key of several columns that reads what
// the row gets, and a path guard whose NULL branch fails; it refuses a path
// guard whose NULL branch writes.
func TestVerifierAcceptsCompositeGuards(t *testing.T) {
	p := verify.Policy{Tenants: map[string][]string{"": {"1"}}, SearchPath: []string{"public"}, Snapshot: referencesCatalog()}
	if err := verify.Check(compositeGuard("1::int IS NULL", "tenantproxy_ref.tenant_id = 1::int", "1"), p); err != nil {
		t.Fatalf("refused: %v", err)
	}
	path := func(nullArm string) string {
		return "UPDATE public.watchers SET task_id = (SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL THEN " +
			nullArm + " ELSE (SELECT NULL::int) END FROM (SELECT 30::int AS v) tenantproxy_guard) WHERE watchers.task_id IN (SELECT tasks.id FROM public.tasks WHERE tasks.tenant_id = '1')"
	}
	if err := verify.Check(path("(SELECT NULL::int)"), p); err != nil {
		t.Errorf("a path guard with its NULL branch refused: %v", err)
	}
	if err := verify.Check(path("tenantproxy_guard.v"), p); err == nil {
		t.Errorf("accepted a path guard whose NULL branch writes the value")
	}
}

// copyTasks is a COPY into tasks that sets both its keys.
const copyTasks = "COPY public.tasks (id, assignee_id, project_id, tenant_id) FROM STDIN"

// The verifier checks the check after a COPY's rows on its own terms:
// every value a reference guard over the keys, nothing else read; a
// path-bound table's rows are only filled with their parents checked.
func TestVerifierChecksCopyKeys(t *testing.T) {
	p := verify.Policy{Tenants: map[string][]string{"": {"1"}}, SearchPath: []string{"public"}, Snapshot: referencesCatalog()}
	guard := func(table, filter, col string) string {
		return "(SELECT CASE WHEN tenantproxy_guard.v IS NULL THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public." + table + " WHERE " + table + ".id = tenantproxy_guard.v" + filter +
			") THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT tenantproxy_copy_keys." + col + "::int AS v) tenantproxy_guard)"
	}
	own := func(table string) string { return " AND " + table + ".tenant_id = '1'" }
	keys := " FROM (SELECT * FROM pg_temp.tenantproxy_copy_keys ORDER BY n, c OFFSET 0) tenantproxy_copy_keys"
	good := "SELECT count(ROW(" + guard("users", own("users"), "v0") + ", " + guard("projects", own("projects"), "v1") + "))" + keys
	if err := verify.CheckCopy(copyTasks, good, p); err != nil {
		t.Fatalf("the check's own shape is refused: %v", err)
	}
	for _, sql := range []string{
		"SELECT count(ROW(" + guard("users", "", "v0") + "))" + keys,                                                // no tenant filter
		"SELECT count(ROW(" + guard("users", " OR users.tenant_id = '1'", "v0") + "))" + keys,                       // a filter that lets all through
		"SELECT count(ROW(" + guard("users", own("users"), "v1") + "))" + keys,                                      // another column's values
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + ", (SELECT count(*) FROM public.users)))" + keys, // something else read
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + "))" + keys + " WHERE true",
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + ")) FROM public.users tenantproxy_copy_keys",
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + ")) FROM (SELECT * FROM public.users OFFSET 0) tenantproxy_copy_keys",
		"SELECT sum(ROW(" + guard("users", own("users"), "v0") + "))" + keys,
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + "))" + keys + "; SELECT 1",
	} {
		if err := verify.CheckCopy(copyTasks, sql, p); err == nil {
			t.Errorf("accepted: %s", sql)
		}
	}
	// Into path-bound watchers: the first value must be the parent guard.
	parent := "CASE WHEN tenantproxy_copy_keys.c = 0 THEN (SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v ELSE (SELECT NULL::int) END FROM (SELECT tenantproxy_copy_keys.v0::int AS v) tenantproxy_guard) END"
	watchers := "COPY public.watchers (task_id, user_id) FROM STDIN"
	if err := verify.CheckCopy(watchers, "SELECT count(ROW("+parent+", "+guard("users", own("users"), "v1")+"))"+keys, p); err != nil {
		t.Errorf("a COPY into a path-bound table with its parents checked is refused: %v", err)
	}
	for _, check := range []string{
		"SELECT count(ROW(" + guard("users", own("users"), "v0") + "))" + keys, // no parent guard
		"SELECT count(ROW(" + strings.Replace(parent, " AND tenantproxy_ref.tenant_id = '1'", "", 1) + "))" + keys,
		"SELECT count(ROW(" + strings.Replace(parent, "c = 0", "c = 1", 1) + "))" + keys,
		"SELECT count(ROW(" + strings.TrimSuffix(strings.TrimPrefix(parent, "CASE WHEN tenantproxy_copy_keys.c = 0 THEN "), " END") + "))" + keys,
	} {
		if err := verify.CheckCopy(watchers, check, p); err == nil {
			t.Errorf("accepted a COPY into a path-bound table with %s", check)
		}
	}
	if err := verify.CheckCopy("COPY public.watchers (user_id) FROM STDIN", "SELECT count(ROW("+parent+"))"+keys, p); err == nil {
		t.Errorf("accepted a COPY into a path-bound table without its via column")
	}
	if err := verify.Check(watchers, p); err == nil {
		t.Errorf("accepted a COPY into a path-bound table without the check of its parents")
	}
}

// FuzzReferences checks, on a catalog with every kind of foreign key, that
// the rewriter never panics and only refuses with a *Rejection, that an
// accepted output parses and is accepted again (the client's COPY of a
// string with checked keys), and that the cache gives the uncached result.
func FuzzReferences(f *testing.F) {
	for _, sql := range []string{
		"UPDATE tasks SET assignee_id = 20 WHERE id = 1",
		"INSERT INTO tasks (id, assignee_id) VALUES (1, 20), (2, $1)",
		"INSERT INTO links (id, a, b) SELECT v.x, v.y, v.z FROM (VALUES (1, 2, 3)) v (x, y, z)",
		"UPDATE links l SET b = 5",
		"INSERT INTO dflt DEFAULT VALUES",
		"INSERT INTO shared (id, user_id) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET user_id = 20",
		"MERGE INTO tasks t USING (SELECT 1 AS id) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, assignee_id) VALUES (s.id, 20)",
		"COPY tasks (id, assignee_id, project_id) FROM STDIN (FORMAT csv)",
		"COPY watchers (task_id, user_id) FROM STDIN",
		"COPY links (id, b, a) FROM STDIN (FORMAT binary)",
		"INSERT INTO tasks (id, assignee_id) VALUES (1, 20), ($1, 21) ON CONFLICT DO NOTHING",
		"INSERT INTO watchers (task_id, user_id, badge) SELECT v.t, 20, v.b FROM (VALUES (30, 7)) v (t, b) ON CONFLICT (badge) DO NOTHING",
	} {
		f.Add(sql)
	}
	snap := referencesCatalog()
	r := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	cache, err := rewrite.NewCache(r, 100)
	if err != nil {
		f.Fatal(err)
	}
	scope := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	f.Fuzz(func(t *testing.T, sql string) {
		res, err := r.Rewrite(sql, scope, snap)
		cached, cerr := cache.Rewrite(sql, scope, snap)
		if (err == nil) != (cerr == nil) || err == nil && res.SQL != cached.SQL {
			t.Fatalf("cached %v, uncached %v", cerr, err)
		}
		if err != nil {
			if _, ok := err.(*rewrite.Rejection); !ok {
				t.Fatalf("error is %T, want *Rejection", err)
			}
			return
		}
		if _, err := pg.Parse(res.SQL); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, res.SQL)
		}
		again := res.SQL
		if res.CopyIn != nil && res.CopyIn.Keys != nil {
			again = res.CopyIn.Statement
		}
		if _, err := r.Rewrite(again, scope, snap); err != nil && !strings.Contains(err.Error(), "is too long: the proxy adds") {
			t.Fatalf("the output is refused when rewritten again: %v\n%s", err, res.SQL)
		}
	})
}

// A proposed row of INSERT ... ON CONFLICT that one of the session's rows
// matches on an arbiter key is never inserted: its guard passes the value
// then too, the matching row locked FOR KEY SHARE, for keys "=" decides
// and the statement cannot change.
func TestConflictArms(t *testing.T) {
	snap := referencesCatalog()
	r := rewrite.New(rewrite.Config{SearchPath: []string{"public"}})
	scope := rewrite.Scope{Values: map[string][]string{"": {"1"}}}
	arm := func(conds string) string {
		return "THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE " + conds +
			" AND tenantproxy_ref.tenant_id = '1' FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v"
	}
	byID := arm("tenantproxy_ref.id = 1::int")
	both := arm("tenantproxy_ref.tenant_id = '1'::int AND tenantproxy_ref.id = 1::int")
	for _, tc := range []struct {
		sql          string
		want, absent []string
	}{
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT DO NOTHING", want: []string{byID, both}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id) DO NOTHING", want: []string{byID}, absent: []string{both}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT ON CONSTRAINT tasks_pkey DO NOTHING", want: []string{byID}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id, tenant_id) DO UPDATE SET project_id = 1", want: []string{both}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES ($1, 20) ON CONFLICT (id) DO NOTHING", want: []string{arm("tenantproxy_ref.id = $1::int")}},
		{sql: "INSERT INTO tasks (id, assignee_id) SELECT v.id, 20 FROM (VALUES (4)) v (id) ON CONFLICT (id) DO NOTHING", want: []string{arm("tenantproxy_ref.id = v.id::int")}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20), (2, 21) ON CONFLICT (id) DO NOTHING", want: []string{byID, arm("tenantproxy_ref.id = 2::int")}},
		// No arm: a key the statement changes, one "=" does not decide, a
		// value the guard cannot read again, a key the inference does not
		// name, a WITH that writes, no ON CONFLICT.
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20), (2, 20) ON CONFLICT (id) DO UPDATE SET id = 5", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) SELECT v.id, 20 FROM (VALUES (1)) v (id) ON CONFLICT (id) DO UPDATE SET id = 5", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id) DO UPDATE SET id = 5", want: []string{byID}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT ON CONSTRAINT tasks_id_ci_key DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1 + 0, 20) ON CONFLICT (id) DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) SELECT id, 20 FROM (VALUES (4)) v (id) ON CONFLICT (id) DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (assignee_id) VALUES (20) ON CONFLICT (id) DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id) WHERE id > 0 DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id COLLATE \"C\") DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (project_id) DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "WITH d AS (DELETE FROM tasks WHERE id = 1 RETURNING id) INSERT INTO tasks (id, assignee_id) VALUES (1, 20) ON CONFLICT (id) DO NOTHING", absent: []string{"FOR KEY SHARE"}},
		{sql: "INSERT INTO tasks (id, assignee_id) VALUES (1, 20)", absent: []string{"FOR KEY SHARE"}},
		// A path-bound table's via column, and its other keys.
		{sql: "INSERT INTO watchers (task_id, user_id, badge) VALUES (30, 20, 7) ON CONFLICT (badge) DO NOTHING", want: []string{
			"SELECT CASE WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE tenantproxy_ref.id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1') THEN tenantproxy_guard.v " +
				"WHEN EXISTS (SELECT 1 FROM public.watchers tenantproxy_ref WHERE tenantproxy_ref.badge = 7::int AND tenantproxy_ref.task_id IN (SELECT tasks.id FROM public.tasks WHERE tasks.tenant_id = '1') FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL THEN",
			"THEN tenantproxy_guard.v WHEN EXISTS (SELECT 1 FROM public.watchers tenantproxy_ref WHERE tenantproxy_ref.badge = 7::int AND tenantproxy_ref.task_id IN (SELECT tasks.id FROM public.tasks WHERE tasks.tenant_id = '1') FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v ELSE"}},
		{sql: "UPDATE watchers SET task_id = 30 WHERE badge = 7", absent: []string{"FOR KEY SHARE"}},
		// A writable global table's rows are everyone's.
		{sql: "INSERT INTO shared (id, user_id) VALUES (1, 20) ON CONFLICT DO NOTHING", want: []string{
			"WHEN EXISTS (SELECT 1 FROM public.shared tenantproxy_ref WHERE tenantproxy_ref.id = 1::int FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v ELSE"}},
		// The key's own column in the arbiter key is the guarded value.
		{sql: "INSERT INTO tasks (id, project_id) VALUES (1, 14) ON CONFLICT (tenant_id, project_id) DO NOTHING", want: []string{
			"WHEN EXISTS (SELECT 1 FROM public.tasks tenantproxy_ref WHERE tenantproxy_ref.tenant_id = '1'::int AND tenantproxy_ref.project_id = tenantproxy_guard.v AND tenantproxy_ref.tenant_id = '1' FOR KEY SHARE OF tenantproxy_ref)"}},
	} {
		res, err := r.Rewrite(tc.sql, scope, snap)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(res.SQL, w) {
				t.Errorf("%s:\n%s\nwants %q", tc.sql, res.SQL, w)
			}
		}
		for _, a := range tc.absent {
			if strings.Contains(res.SQL, a) {
				t.Errorf("%s:\n%s\nmay not hold %q", tc.sql, res.SQL, a)
			}
		}
	}
}

// The verifier accepts a conflict branch only as the rewriter writes it: a
// lookup of the target, locked, matching the row's own values on an
// arbiter key the statement cannot change.
func TestVerifierChecksConflictArms(t *testing.T) {
	snap := referencesCatalog()
	p := verify.Policy{Tenants: map[string][]string{"": {"1"}}, SearchPath: []string{"public"}, Snapshot: snap}
	res, err := rewrite.New(rewrite.Config{SearchPath: []string{"public"}}).Rewrite(
		"INSERT INTO tasks (id, assignee_id) SELECT v.id, 20 FROM (VALUES (4)) v (id) ON CONFLICT (id) DO NOTHING", rewrite.Scope{Values: map[string][]string{"": {"1"}}}, snap)
	if err != nil {
		t.Fatal(err)
	}
	good := res.SQL
	if err := verify.Check(good, p); err != nil {
		t.Fatalf("refused the rewriter's own output: %v", err)
	}
	for _, m := range []struct{ old, new string }{
		{" FOR KEY SHARE OF tenantproxy_ref", ""},
		{" AND tenantproxy_ref.tenant_id = '1' FOR KEY SHARE", " FOR KEY SHARE"},
		{" FOR KEY SHARE OF tenantproxy_ref", " FOR KEY SHARE OF tenantproxy_ref SKIP LOCKED"},
		{" FOR KEY SHARE OF tenantproxy_ref", " FOR UPDATE OF tenantproxy_ref NOWAIT"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.id = (v.id + 1)::int"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.id = 4::int"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.id = v.id::text"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.id = tenantproxy_ref.id::int"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.project_id = v.id::int"},
		{"tenantproxy_ref.id = v.id::int", "tenantproxy_ref.id >= v.id::int"},
		{"tenantproxy_ref.id = v.id::int AND ", "tenantproxy_ref.id = v.id::int OR "},
		{"FROM public.tasks tenantproxy_ref", "FROM public.projects tenantproxy_ref"},
		{"FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v", "FOR KEY SHARE OF tenantproxy_ref) THEN 20"},
		{"ON CONFLICT (id) DO NOTHING", "ON CONFLICT (id) DO UPDATE SET id = 5 WHERE tasks.tenant_id = '1'"},
		{"ON CONFLICT (id) DO NOTHING", "ON CONFLICT (project_id) DO NOTHING"},
		{"ON CONFLICT (id) DO NOTHING", "ON CONFLICT ON CONSTRAINT tasks_id_ci_key DO NOTHING"},
		{"ON CONFLICT (id) DO NOTHING", ""},
		{"INSERT INTO", "WITH d AS (DELETE FROM public.tasks WHERE tasks.tenant_id = '1' RETURNING id) INSERT INTO"},
	} {
		refusesMutation(t, good, m.old, m.new, p)
	}
	// A path guard's branch, before its NULL branch.
	res, err = rewrite.New(rewrite.Config{SearchPath: []string{"public"}}).Rewrite(
		"INSERT INTO watchers (task_id, user_id, badge) VALUES (30, 1, 7) ON CONFLICT (badge) DO NOTHING", rewrite.Scope{Values: map[string][]string{"": {"1"}}}, snap)
	if err != nil {
		t.Fatal(err)
	}
	good = res.SQL
	for _, m := range []struct{ old, new string }{
		{"tenantproxy_ref.badge = 7::int", "tenantproxy_ref.badge = 8::int"},
		{" FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL", ") THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL"},
		{"FOR KEY SHARE OF tenantproxy_ref) THEN tenantproxy_guard.v WHEN tenantproxy_guard.v IS NULL", "FOR KEY SHARE OF tenantproxy_ref) THEN 30 WHEN tenantproxy_guard.v IS NULL"},
		{" ON CONFLICT (badge) DO NOTHING", ""},
	} {
		refusesMutation(t, good, m.old, m.new, p)
	}
}

// refusesMutation checks that the verifier refuses good with old replaced
// by new (which must change it).
func refusesMutation(t *testing.T, good, old, new string, p verify.Policy) {
	t.Helper()
	bad := strings.Replace(good, old, new, 1)
	if bad == good {
		t.Fatalf("%q is not in %s", old, good)
	}
	if err := verify.Check(bad, p); err == nil {
		t.Errorf("accepted: %s", bad)
	}
}
