package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the audit stream",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditTailCmd(), newAuditReportCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "verify FILE... | --dsn DSN",
		Short: "Check the hash chain of an audit file or a rotated series (oldest first)",
		Long: `Check that every event follows from the one before: the first modified,
inserted, reordered or deleted event is reported by file, line and sequence
number, and the exit status is 1. A last line torn by a crash is reported as
such, not as tampering.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (dsn == "") == (len(args) == 0) {
				return errors.New("give audit files, or --dsn for the audit table")
			}
			if dsn != "" {
				exported, err := exportTable(cmd.Context(), dsn)
				if err != nil {
					return err
				}
				defer os.Remove(exported)
				args = []string{exported}
			}
			r, err := audit.VerifyFiles(args)
			out := cmd.OutOrStdout()
			for _, t := range r.Torn {
				fmt.Fprintln(out, "note:", t)
			}
			if err != nil {
				fmt.Fprintf(out, "FAILED after %d good events: %v\n", r.Events, err)
				return errSilentExit
			}
			fmt.Fprintf(out, "ok: %d events in %d files, seq %d to %d, chain intact\n", r.Events, r.Files, r.FirstSeq, r.LastSeq)
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "dsn", "", "verify table "+audit.PGTable+" of this database instead of files")
	return cmd
}

// exportTable copies the audit table to a temporary file for verification.
func exportTable(ctx context.Context, dsn string) (string, error) {
	f, err := os.CreateTemp("", "tenantproxy-audit-*.jsonl")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := audit.ExportPostgres(ctx, dsn, f); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("read %s: %w", audit.PGTable, err)
	}
	return f.Name(), nil
}

// tailFilter selects events for audit tail.
type tailFilter struct {
	tenant, decision, subject, kind string
}

func (f tailFilter) match(e audit.Event) bool {
	return (f.tenant == "" || slices.Contains(e.Tenants, f.tenant)) &&
		(f.decision == "" || e.Decision == f.decision) &&
		(f.subject == "" || e.Subject == f.subject) &&
		(f.kind == "" || e.Kind == f.kind)
}

func newAuditTailCmd() *cobra.Command {
	var f tailFilter
	var follow bool
	var output string
	var lines int
	cmd := &cobra.Command{
		Use:   "tail FILE [--follow] [--tenant T] [--decision D] [--subject S]",
		Short: "Show audit events readably (or raw with --output json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: use text or json", output)
			}
			if f.decision != "" && !slices.Contains(audit.Decisions, f.decision) {
				return fmt.Errorf("--decision %q: use one of %s", f.decision, strings.Join(audit.Decisions, ", "))
			}
			file, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer file.Close()
			out := cmd.OutOrStdout()
			show := func(line []byte) {
				var e audit.Event
				if json.Unmarshal(line, &e) != nil || !f.match(e) {
					return
				}
				if output == "json" {
					fmt.Fprintf(out, "%s\n", line)
					return
				}
				fmt.Fprintln(out, formatEvent(e))
			}
			r := bufio.NewReader(file)
			var shown [][]byte // the last matching lines
			for {
				line, err := r.ReadBytes('\n')
				if len(line) > 0 && line[len(line)-1] == '\n' {
					var e audit.Event
					if json.Unmarshal(line, &e) == nil && f.match(e) {
						shown = append(shown, line[:len(line)-1])
						if lines > 0 && len(shown) > 2*lines {
							shown = slices.Clone(shown[len(shown)-lines:])
						}
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
			}
			if lines > 0 && len(shown) > lines {
				shown = shown[len(shown)-lines:]
			}
			for _, l := range shown {
				show(l)
			}
			if !follow {
				return nil
			}
			return followFile(cmd.Context(), r, show)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing events as they are written")
	fl.StringVar(&f.tenant, "tenant", "", "only events of this tenant")
	fl.StringVar(&f.decision, "decision", "", "only statements with this decision: passed, rewritten, rejected or unscoped; in shadow mode would-rewrite or would-reject")
	fl.StringVar(&f.subject, "subject", "", "only events of this token subject")
	fl.StringVar(&f.kind, "kind", "", "only events of this kind (statement, auth.failed, ...)")
	fl.IntVarP(&lines, "lines", "n", 20, "how many matching events to show first (0: all)")
	fl.StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// followFile prints complete lines appended after the reader's position.
func followFile(ctx context.Context, r *bufio.Reader, show func([]byte)) error {
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if len(partial) > 0 && partial[len(partial)-1] == '\n' {
			show(partial[:len(partial)-1])
			partial = nil
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// formatEvent renders one event on one line for people.
func formatEvent(e audit.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %-15s", e.Time.Format(time.RFC3339), e.Seq, e.Kind)
	if e.Mode != "" {
		fmt.Fprintf(&b, " [%s]", e.Mode)
	}
	if e.Subject != "" || len(e.Tenants) > 0 {
		fmt.Fprintf(&b, " sub=%s tenant=%s", e.Subject, strings.Join(e.Tenants, ","))
	}
	if e.Decision != "" {
		fmt.Fprintf(&b, " %s", e.Decision)
	}
	if e.SQL != "" {
		fmt.Fprintf(&b, " %q", e.SQL)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	if e.SQLState != "" {
		fmt.Fprintf(&b, " sqlstate=%s", e.SQLState)
	}
	return b.String()
}
