// Command tenantproxy is a PostgreSQL wire-protocol proxy that confines every
// statement to the tenant named in the client's JWT.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		if !errors.Is(err, errSilentExit) {
			fmt.Fprintln(os.Stderr, "tenantproxy:", err)
		}
		os.Exit(1)
	}
}

// errSilentExit exits 1 after a command has already said why.
var errSilentExit = errors.New("exit 1")

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tenantproxy",
		Short:         "A PostgreSQL proxy that confines every statement to the tenant in the client's JWT",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
	}
	root.AddCommand(newServeCmd(), newTokenCmd(), newRewriteCmd(), newCatalogCmd(), newAuditCmd())
	return root
}

// bindEnv sets every flag the user did not give from TENANTPROXY_<FLAG>
// (upper case, dashes as underscores). Repeatable flags take a comma-separated
// list.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "TENANTPROXY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		values := []string{v}
		if strings.HasSuffix(f.Value.Type(), "Slice") || strings.HasSuffix(f.Value.Type(), "Array") {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if e := cmd.Flags().Set(f.Name, one); e != nil {
				err = fmt.Errorf("environment variable %s: %w", name, e)
				return
			}
		}
	})
	return err
}
