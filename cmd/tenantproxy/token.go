package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/auth"
)

func newTokenCmd() *cobra.Command {
	var (
		secretFile string
		o          auth.MintOptions
	)
	cmd := &cobra.Command{
		Use:   "token --secret-file FILE --tenant ID [--tenant ID ...]",
		Short: "Mint an HS256 token for development and tests",
		Long: `Mint an HS256 token signed with the HMAC secret in --secret-file, the same
file the proxy is given as --jwt-key. For development, tests and the demo;
production tokens come from your identity provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secretFile == "" {
				return errors.New("--secret-file is required: the HMAC secret the proxy verifies with")
			}
			if len(o.Tenants) == 0 {
				return errors.New("give at least one --tenant")
			}
			secret, err := os.ReadFile(secretFile)
			if err != nil {
				return err
			}
			tok, err := auth.Mint(bytes.TrimRight(secret, "\r\n"), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&secretFile, "secret-file", "", "file holding the HMAC secret (at least 32 bytes)")
	f.StringArrayVar(&o.Tenants, "tenant", nil, "tenant the token names (repeatable: several make an array)")
	f.DurationVar(&o.TTL, "ttl", time.Hour, "how long the token is valid")
	f.StringVar(&o.Issuer, "issuer", "", "iss claim")
	f.StringVar(&o.Subject, "subject", "dev", "sub claim")
	f.StringVar(&o.Audience, "audience", "", "aud claim")
	f.StringVar(&o.Role, "role", "", "role claim")
	f.StringVar(&o.TenantClaim, "tenant-claim", "tenant_id", "claim that names the tenant (a dotted path nests it)")
	return cmd
}
