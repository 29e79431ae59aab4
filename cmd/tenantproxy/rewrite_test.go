package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// catalogFile writes a small catalog as "tenantproxy catalog list -o json"
// prints it.
func catalogFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	const tables = `[
  {"schema": "public", "name": "orders", "kind": "tenant", "tenant_column": "tenant_id"},
  {"schema": "public", "name": "plans", "kind": "global"},
  {"schema": "public", "name": "projects", "kind": "tenant", "tenant_column": "org_id", "claim": "org"}
]`
	if err := os.WriteFile(path, []byte(tables), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("TENANTPROXY_UPSTREAM", "")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestRewriteCommand(t *testing.T) {
	file := catalogFile(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // lines the output must contain
		fail bool
	}{
		{name: "scoped", args: []string{"--tenant", "42", "SELECT * FROM orders"},
			want: []string{"SELECT * FROM (SELECT * FROM public.orders WHERE orders.tenant_id = '42') orders"}},
		{name: "several tenants", args: []string{"--tenant", "1", "--tenant", "2", "SELECT * FROM orders"},
			want: []string{"orders.tenant_id IN ('1', '2')"}},
		{name: "explain", args: []string{"--tenant", "42", "--explain", "UPDATE orders SET tenant_id = $1"},
			want: []string{"-- decision: rewritten", "-- public.orders: UPDATE confined to rows where tenant_id = \"42\"", "-- parameter $1 must be bound"}},
		{name: "passed", args: []string{"--tenant", "42", "--explain", "BEGIN"},
			want: []string{"BEGIN", "-- decision: passed"}},
		{name: "other claim", args: []string{"--tenant", "42", "--claim", "org=9", "SELECT * FROM projects"},
			want: []string{"projects.org_id = '9'"}},
		{name: "rejected", args: []string{"--tenant", "42", "SELECT * FROM secrets"}, fail: true,
			want: []string{`rejected: table "secrets" is not in the tenant catalog`, "hint: add it with: tenantproxy catalog add-table secrets"}},
		{name: "rejected explained", args: []string{"--tenant", "42", "--explain", "SELEC 1"}, fail: true,
			want: []string{`rejected: syntax error at or near "SELEC"`, "SQLSTATE 42601; at character 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, append([]string{"rewrite", "--catalog-file", file}, tc.args...)...)
			if tc.fail != errors.Is(err, errSilentExit) {
				t.Fatalf("error %v, want failure %v; output:\n%s", err, tc.fail, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestRewriteCommandNeedsTenantAndCatalog(t *testing.T) {
	if _, err := runCLI(t, "rewrite", "--catalog-file", catalogFile(t), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Errorf("without --tenant: %v", err)
	}
	if _, err := runCLI(t, "rewrite", "--tenant", "1", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "--catalog-file") {
		t.Errorf("without a catalog: %v", err)
	}
	if _, err := runCLI(t, "rewrite", "--tenant", "1", "--claim", "org", "--catalog-file", catalogFile(t), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "name=value") {
		t.Errorf("malformed --claim: %v", err)
	}
}
