package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// The catalog subcommands that review and move the catalog as a whole:
// show, export, import, diff, discover and check.

// outputFlag adds --output table|json and returns a checker for it.
func outputFlag(cmd *cobra.Command) func() (bool, error) {
	var output string
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return func() (bool, error) {
		switch output {
		case "table":
			return false, nil
		case "json":
			return true, nil
		}
		return false, fmt.Errorf("--output %q: use table or json", output)
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (cf *catalogFlags) showCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show TABLE",
		Short: "Show one table's catalog entry and what check says about it",
		Args:  cobra.ExactArgs(1),
	}
	jsonOut := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		asJSON, err := jsonOut()
		if err != nil {
			return err
		}
		return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
			parts, err := catalog.SplitName(args[0])
			if err != nil {
				return "", err
			}
			snap, err := catalog.Load(ctx, conn)
			if err != nil {
				return "", err
			}
			t, ok := lookupTable(snap, parts, cf.searchPath)
			if !ok {
				return "", fmt.Errorf("table %q is not in the catalog (list shows what is)", args[0])
			}
			findings, err := catalog.Check(ctx, conn)
			if err != nil {
				return "", err
			}
			mine := []catalog.Finding{}
			for _, f := range findings {
				if f.Table == catalog.QuoteName(t.Schema, t.Name) {
					mine = append(mine, f)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return "", printJSON(out, map[string]any{"table": t, "findings": mine})
			}
			if err := printTables(out, []catalog.Table{t}); err != nil {
				return "", err
			}
			fmt.Fprintln(out, "\ncolumns:")
			for _, c := range t.Columns {
				fmt.Fprintf(out, "  %s %s\n", catalog.QuoteName(c.Name), c.Type)
			}
			for _, f := range mine {
				fmt.Fprintf(out, "%s: %s\n", f.Level, f.Message)
			}
			return "", nil
		})
	}
	return cmd
}

// lookupTable finds a catalogued table by a user-typed name.
func lookupTable(snap *catalog.Snapshot, parts, searchPath []string) (catalog.Table, bool) {
	if len(parts) == 2 {
		return snap.Lookup(parts[0], parts[1])
	}
	for _, s := range searchPath {
		if t, ok := snap.Lookup(s, parts[0]); ok {
			return t, true
		}
	}
	return catalog.Table{}, false
}

func (cf *catalogFlags) exportCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export [--file FILE]",
		Short: "Write the catalog as YAML, for review in version control",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				f, err := catalog.Export(ctx, conn)
				if err != nil {
					return "", err
				}
				b, err := f.Marshal()
				if err != nil {
					return "", err
				}
				if file == "" || file == "-" {
					_, err = cmd.OutOrStdout().Write(b)
					return "", err
				}
				return fmt.Sprintf("wrote catalog version %d (%d tables) to %s", f.Version, len(f.Tables), file), os.WriteFile(file, b, 0o644)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "-", "where to write (- for stdout)")
	return cmd
}

// readCatalogFile reads and validates a catalog file ("-" is stdin).
func readCatalogFile(cmd *cobra.Command, name string) (*catalog.File, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(cmd.InOrStdin())
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	f, err := catalog.ParseFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// planImport reads the file and the stored catalog and returns the diff.
func planImport(ctx context.Context, conn *pgx.Conn, cmd *cobra.Command, name string) (*catalog.File, *catalog.File, []string, error) {
	want, err := readCatalogFile(cmd, name)
	if err != nil {
		return nil, nil, nil, err
	}
	have, err := catalog.Export(ctx, conn)
	if err != nil {
		return nil, nil, nil, err
	}
	return want, have, catalog.Diff(have, want), nil
}

func (cf *catalogFlags) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff FILE",
		Short: "Show what importing FILE would change (exit status 1 when it would change something)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := false
			err := cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				_, have, diff, err := planImport(ctx, conn, cmd, args[0])
				if err != nil {
					return "", err
				}
				changed = len(diff) > 0
				if !changed {
					return fmt.Sprintf("no changes against catalog version %d", have.Version), nil
				}
				return fmt.Sprintf("against catalog version %d:\n%s", have.Version, strings.Join(diff, "\n")), nil
			})
			if err == nil && changed {
				return errSilentExit
			}
			return err
		},
	}
}

func (cf *catalogFlags) importCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Replace the catalog with FILE in one transaction (validated first; shows the diff)",
		Long: `Validate FILE completely (syntax, names, kinds, paths, and every table and
column against the live schema), show what changes, and apply it in one
transaction. If someone changed the catalog after the diff was computed, the
import is refused with a version conflict and nothing is applied.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
				want, have, diff, err := planImport(ctx, conn, cmd, args[0])
				if err != nil {
					return "", err
				}
				out := cmd.OutOrStdout()
				if len(diff) == 0 {
					return fmt.Sprintf("no changes against catalog version %d", have.Version), nil
				}
				fmt.Fprintf(out, "against catalog version %d:\n%s\n", have.Version, strings.Join(diff, "\n"))
				if dryRun {
					return "dry run: nothing applied", nil
				}
				return catalog.Import(ctx, conn, want, have.Version, changedBy())
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show the diff without applying it")
	return cmd
}

func (cf *catalogFlags) discoverCmd() *cobra.Command {
	var tenantColumn string
	var schemas []string
	var apply bool
	var tenantSchema string
	cmd := &cobra.Command{
		Use:   "discover [--tenant-column COL] [--tenant-schema PATTERN] [--apply]",
		Short: "Propose a catalog from the live schema (--apply writes it)",
		Long: `Introspect the live schema and propose a catalog: tables with the tenant column
are tenant-bound; tables without it that reach a tenant-bound table through
single-column foreign keys are path-bound along the shortest chain (ties are
reported for you to choose with add-path --via); partitions and inheritance
children follow their parent; everything else is listed as unknown and stays
refused until you catalogue it. Tables already in the catalog are left as
they are. Prints the plan; --apply writes it in one transaction.

For a schema-per-tenant layout, --tenant-schema 'tenant_{tenant}' lists the
schemas the pattern names and the tables they hold instead of proposing them
(sessions reach their own schema without catalog entries), and notes a
shared table whose name is also a tenant table's.`,
		Args: cobra.NoArgs,
	}
	jsonOut := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		asJSON, err := jsonOut()
		if err != nil {
			return err
		}
		return cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
			p, err := catalog.Discover(ctx, conn, tenantColumn, schemas, tenantSchema)
			if err != nil {
				return "", err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, p); err != nil {
					return "", err
				}
			} else if err := printProposal(out, p); err != nil {
				return "", err
			}
			if !apply {
				if len(p.Tables) > 0 && !asJSON {
					return "plan only: run again with --apply to write it", nil
				}
				return "", nil
			}
			if len(p.Tables) == 0 {
				return "nothing to apply", nil
			}
			return catalog.ApplyProposal(ctx, conn, p, changedBy())
		})
	}
	cmd.Flags().StringVar(&tenantColumn, "tenant-column", "tenant_id", "the column that names a row's tenant")
	cmd.Flags().StringSliceVar(&schemas, "schema", nil, "schemas to look at (default: all but the system schemas)")
	cmd.Flags().BoolVar(&apply, "apply", false, "write the proposal to the catalog")
	cmd.Flags().StringVar(&tenantSchema, "tenant-schema", "", "schema-per-tenant layout: the pattern naming tenant schemas (as serve --tenant-schema); their tables are listed, not proposed")
	return cmd
}

// printProposal writes a discover plan readably.
func printProposal(w io.Writer, p *catalog.Proposal) error {
	if len(p.Tables) > 0 {
		fmt.Fprintln(w, "proposed:")
		if err := printTables(w, p.Tables); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(w, "nothing new to propose")
	}
	section := func(title string, lines []string) {
		if len(lines) > 0 {
			fmt.Fprintf(w, "\n%s:\n  %s\n", title, strings.Join(lines, "\n  "))
		}
	}
	section("notes", p.Notes)
	section("ambiguous (choose with: tenantproxy catalog add-path TABLE --via COLUMN)", p.Ambiguous)
	section("unknown (refused until catalogued; add-global for shared tables)", p.Unknown)
	section("already catalogued (left as they are)", p.Catalogued)
	if len(p.TenantSchemas) > 0 {
		const show = 10
		names := p.TenantSchemas
		more := ""
		if len(names) > show {
			names, more = names[:show], fmt.Sprintf(", ... (%d in all)", len(p.TenantSchemas))
		}
		fmt.Fprintf(w, "\ntenant schemas (each session reaches its own; no catalog entries needed):\n  %s%s\n", strings.Join(names, ", "), more)
		section("tables in tenant schemas (in how many of them)", p.TenantTables)
	}
	return nil
}

func (cf *catalogFlags) checkCmd() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "check [--strict]",
		Short: "Compare the catalog with the live schema (exit status 1 on errors, or on warnings with --strict)",
		Args:  cobra.NoArgs,
	}
	jsonOut := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		asJSON, err := jsonOut()
		if err != nil {
			return err
		}
		failed := false
		err = cf.run(cmd, func(ctx context.Context, conn *pgx.Conn) (string, error) {
			findings, err := catalog.Check(ctx, conn)
			if err != nil {
				return "", err
			}
			errs, warns, notes := 0, 0, 0
			for _, f := range findings {
				switch f.Level {
				case "error":
					errs++
				case "warning":
					warns++
				default:
					notes++
				}
			}
			failed = errs > 0 || (strict && warns > 0)
			out := cmd.OutOrStdout()
			if asJSON {
				return "", printJSON(out, findings)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, f := range findings {
				table := f.Table
				if table == "" {
					table = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Level, table, f.Message)
			}
			if err := tw.Flush(); err != nil {
				return "", err
			}
			return fmt.Sprintf("%d errors, %d warnings, %d notes", errs, warns, notes), nil
		})
		if err == nil && failed {
			return errSilentExit
		}
		return err
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings too")
	return cmd
}
