package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// newRewriteCmd is "tenantproxy rewrite": the rewriter on one statement,
// with the catalog from the database or from a file. It prints the SQL the
// proxy would send upstream, or the refusal and exits 1.
func newRewriteCmd() *cobra.Command {
	var (
		tenants     []string
		claims      []string
		upstream    string
		catalogFile string
		searchPath  []string
		explain     bool
		schema      string
		readOnly    bool
		unscoped    bool
	)
	cmd := &cobra.Command{
		Use:   `rewrite --tenant ID (--upstream DSN | --catalog-file FILE) "SQL"`,
		Short: "Show what the proxy sends upstream for a statement, or why it refuses it",
		Long: `Show what the proxy sends upstream for a statement, or why it refuses it.

The statement is rewritten exactly as a session of the given tenants would
have it rewritten: the output is the SQL sent upstream; a refusal prints
"rejected: <reason>" and "hint: <what to do>" and exits 1. --explain adds the
decision (passed, rewritten, rejected, unscoped), the tables scoped and the parameters
the session checks at Bind.

The catalog comes from --upstream (the tenantproxy schema of that database)
or from --catalog-file, a JSON array of tables as "tenantproxy catalog list
-o json" prints them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(tenants) == 0 && !unscoped {
				return errors.New("give at least one --tenant")
			}
			if schema != "" {
				if err := rewrite.ValidateTenantSchema(schema); err != nil {
					return fmt.Errorf("--tenant-schema: %w", err)
				}
			}
			snap, err := rewriteCatalog(cmd.Context(), upstream, catalogFile)
			if err != nil {
				return err
			}
			rw := rewrite.New(rewrite.Config{SearchPath: searchPath, TenantSchema: schema})
			scope := rewrite.Scope{Values: map[string][]string{"": tenants}, ReadOnly: readOnly, Unscoped: unscoped}
			for _, c := range claims {
				name, value, ok := strings.Cut(c, "=")
				if !ok || name == "" || value == "" {
					return fmt.Errorf("--claim %q: write it as name=value", c)
				}
				scope.Values[name] = append(scope.Values[name], value)
			}
			res, err := rw.Rewrite(args[0], scope, snap)
			out := cmd.OutOrStdout()
			var rej *rewrite.Rejection
			if errors.As(err, &rej) {
				fmt.Fprintf(out, "rejected: %s\n", rej.Reason)
				if rej.Hint != "" {
					fmt.Fprintf(out, "hint: %s\n", rej.Hint)
				}
				if explain {
					fmt.Fprintf(out, "-- decision: %s; SQLSTATE %s", rewrite.Rejected, rej.Code)
					if rej.Position > 0 {
						fmt.Fprintf(out, "; at character %d", rej.Position)
					}
					fmt.Fprintf(out, "; catalog version %d\n", snap.Version())
				}
				return errSilentExit
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(out, res.SQL)
			if explain {
				fmt.Fprintf(out, "-- decision: %s; catalog version %d\n", res.Decision, snap.Version())
				for _, r := range res.Rules {
					fmt.Fprintf(out, "-- %s: %s\n", r.Relation, r.Rule)
				}
				for _, p := range res.ParamChecks {
					claim := p.Claim
					if claim == "" {
						claim = "tenant"
					}
					fmt.Fprintf(out, "-- parameter $%d must be bound to one of the session's %s values\n", p.Index, claim)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&tenants, "tenant", nil, "tenant of the session (repeatable)")
	f.StringArrayVar(&claims, "claim", nil, "value of another claim dimension, as name=value, for tables catalogued with that claim (repeatable)")
	f.StringVar(&upstream, "upstream", "", "database holding the catalog (or TENANTPROXY_UPSTREAM)")
	f.StringVar(&catalogFile, "catalog-file", "", "a JSON array of catalog tables instead of --upstream")
	f.StringSliceVar(&searchPath, "search-path", []string{"public"}, "schemas that resolve unqualified table names")
	f.BoolVar(&explain, "explain", false, "also print the decision and what was scoped")
	f.StringVar(&schema, "tenant-schema", "", "schema-per-tenant isolation with this pattern, as serve --isolation schema --tenant-schema")
	f.BoolVar(&readOnly, "read-only", false, "as a session whose token lacks the write scope")
	f.BoolVar(&unscoped, "unscoped", false, "as a session of the --unscoped-role")
	return cmd
}

// rewriteCatalog loads the catalog from a file or from the database.
func rewriteCatalog(ctx context.Context, upstream, file string) (*catalog.Snapshot, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var tables []catalog.Table
		if err := json.Unmarshal(b, &tables); err != nil {
			return nil, fmt.Errorf("--catalog-file %s: %w", file, err)
		}
		return catalog.NewSnapshot(0, tables)
	}
	if upstream == "" {
		return nil, errors.New("set --upstream (or TENANTPROXY_UPSTREAM) or --catalog-file to read the catalog")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, upstream)
	if err != nil {
		return nil, fmt.Errorf("connect to --upstream to read the catalog: %w", err)
	}
	defer conn.Close(context.Background())
	return catalog.Load(ctx, conn)
}
