package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// catalogFlags are shared by every catalog subcommand.
type catalogFlags struct {
	upstream   string
	searchPath []string
}

func newCatalogCmd() *cobra.Command {
	var cf catalogFlags
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Manage the tenant catalog stored in the upstream database",
		Long: `The catalog says which tables hold rows of many tenants (and in which column
the tenant is), and which tables are global. It lives in the upstream database,
schema tenantproxy; every change bumps the catalog version.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.upstream, "upstream", "", "the database's URL or DSN (or TENANTPROXY_UPSTREAM)")
	pf.StringSliceVar(&cf.searchPath, "search-path", []string{"public"}, "schemas that resolve unqualified table names, in order (comma-separated or repeated)")

	var tenantColumn, claim string
	addTable := &cobra.Command{
		Use:   "add-table TABLE --tenant-column COLUMN",
		Short: "Catalogue a tenant-bound table",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				return catalog.AddTable(ctx, conn, cf.ref(args[0]), tenantColumn, claim, changedBy())
			})
		},
	}
	addTable.Flags().StringVar(&tenantColumn, "tenant-column", "", "column holding each row's tenant (required)")
	_ = addTable.MarkFlagRequired("tenant-column")
	addTable.Flags().StringVar(&claim, "claim", "", "token claim the column must match (default: the proxy's --tenant-claim)")
	addTable.Long = `Catalogue a tenant-bound table: every row names its tenant in --tenant-column,
which must hold one of the token's values for --claim. Adding a catalogued
table again with another column binds it on one more dimension (for example
org_id to the tenant claim and author_id to "sub"): a row is then visible only
when every bound column matches.`

	var via, parent, parentKey string
	addPath := &cobra.Command{
		Use:   "add-path TABLE --via COLUMN [--parent TABLE --parent-key COLUMN]",
		Short: "Catalogue a table whose tenant is that of the parent row it references",
		Long: `Catalogue a path-bound table: it has no tenant column, and a row belongs to the
tenant of the row its --via column references in the parent table (comment ->
post -> site). The parent must be catalogued first, as tenant-bound or
path-bound. Without --parent, the single-column foreign key on --via names it.
Reads see only rows whose parent is the tenant's; writes that would attach a row
to another tenant's parent fail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				return catalog.AddPath(ctx, conn, cf.ref(args[0]), via, cf.ref(parent), parentKey, changedBy())
			})
		},
	}
	addPath.Flags().StringVar(&via, "via", "", "column referencing the parent row (required)")
	_ = addPath.MarkFlagRequired("via")
	addPath.Flags().StringVar(&parent, "parent", "", "parent table (default: the one the foreign key on --via references)")
	addPath.Flags().StringVar(&parentKey, "parent-key", "", "parent column that --via references (with --parent)")

	allow := func(kind, use, short, long string) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Long: long, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
					return catalog.Allow(ctx, conn, kind, args[0], changedBy())
				})
			},
		}
	}
	allowFunction := allow("function", "allow-function NAME", "Let tenants call a function beyond the built-in list",
		`Let tenants call a function the proxy refuses by default: a built-in by its
name, or a function of your own as schema.name (an unqualified call of it is
qualified by the proxy). Only allow functions that compute on their arguments:
a function that runs SQL or reads tables sees every tenant's rows.`)
	allowRelation := allow("relation", "allow-relation pg_catalog.NAME", "Let tenants read a system relation beyond the built-in list",
		`Let tenants read a relation of pg_catalog or information_schema that the proxy
refuses by default. Relations that hold other tenants' data, statistics or
activity (pg_statistic, pg_stat_*, pg_authid, pg_largeobject, ...) stay refused.`)

	var writable bool
	addGlobal := &cobra.Command{
		Use:   "add-global TABLE [--writable]",
		Short: "Catalogue a table every tenant may read",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				return catalog.AddGlobal(ctx, conn, cf.ref(args[0]), writable, changedBy())
			})
		},
	}
	addGlobal.Flags().BoolVar(&writable, "writable", false, "tenants may also insert, update and delete its rows")

	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "Show the catalogued tables",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: use table or json", output)
			}
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				tables, version, err := catalog.List(ctx, conn)
				if err != nil {
					return "", err
				}
				if output == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return "", enc.Encode(tables)
				}
				return fmt.Sprintf("catalog version %d, %d tables", version, len(tables)), printTables(cmd.OutOrStdout(), tables)
			})
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")

	cmd.AddCommand(
		&cobra.Command{
			Use:   "init",
			Short: "Create or migrate the catalog schema (safe to re-run)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
					if err := catalog.Init(ctx, conn); err != nil {
						return "", err
					}
					return fmt.Sprintf("catalog schema tenantproxy is at version %d", catalog.SchemaVersion), nil
				})
			},
		},
		addTable, addPath, addGlobal, allowFunction, allowRelation,
		cf.showCmd(), cf.exportCmd(), cf.importCmd(), cf.diffCmd(), cf.discoverCmd(), cf.checkCmd(),
		&cobra.Command{
			Use:   "remove TABLE",
			Short: "Take a table out of the catalog (tenants can no longer reach it)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
					return catalog.Remove(ctx, conn, cf.ref(args[0]), changedBy())
				})
			},
		},
		list,
	)
	return cmd
}

// printTables writes the catalog as an aligned table.
func printTables(w io.Writer, tables []catalog.Table) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tKIND\tTENANT COLUMN\tCLAIM\tWRITABLE")
	for _, t := range tables {
		col, claim, writable := "-", "-", "-"
		switch t.Kind {
		case catalog.TenantBound:
			bindings := t.Bindings
			if len(bindings) == 0 {
				bindings = []catalog.Binding{{Column: t.TenantColumn, Claim: t.Claim}}
			}
			var cols, claims []string
			for _, b := range bindings {
				c := b.Claim
				if c == "" {
					c = "(tenant claim)"
				}
				cols, claims = append(cols, catalog.QuoteName(b.Column)), append(claims, c)
			}
			col, claim = strings.Join(cols, ", "), strings.Join(claims, ", ")
		case catalog.PathBound:
			col = fmt.Sprintf("%s -> %s.%s", catalog.QuoteName(t.Via), t.Parent, catalog.QuoteName(t.ParentKey))
		case catalog.Global:
			writable = "no"
			if t.Writable {
				writable = "yes"
			}
		}
		fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%s\t%s\n", catalog.QuoteName(t.Schema), catalog.QuoteName(t.Name), t.Kind, col, claim, writable)
	}
	return tw.Flush()
}

func (cf *catalogFlags) ref(name string) catalog.TableRef {
	return catalog.TableRef{Name: name, SearchPath: cf.searchPath}
}

// run connects to the upstream database, runs f and prints its message.
func (cf *catalogFlags) run(cmd *cobra.Command, f func(ctx context.Context, conn *pgx.Conn) (string, error)) error {
	if cf.upstream == "" {
		return errors.New("set --upstream or TENANTPROXY_UPSTREAM to the database's URL")
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, cf.upstream)
	if err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.Background())
	msg, err := f(ctx, conn)
	if err != nil {
		return err
	}
	if msg != "" {
		fmt.Fprintln(cmd.OutOrStdout(), msg)
	}
	return nil
}

// changedBy names who made a catalog change, for the change log.
func changedBy() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host + " (cli)"
}
