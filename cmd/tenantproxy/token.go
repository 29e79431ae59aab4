package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tenantproxy/tenantproxy/auth"
)

func newTokenCmd() *cobra.Command {
	var (
		secretFile string
		scopes     []string
		o          auth.MintOptions
	)
	cmd := &cobra.Command{
		Use:   "token --secret-file FILE --tenant ID [--tenant ID ...] [--issuer ISS] [--role ROLE] [--scope SCOPE ...]",
		Short: "Mint an HS256 token for development and tests",
		Long: `Mint an HS256 token signed with the HMAC secret in --secret-file (the same
file the proxy is given as --jwt-key, or as an issuer's keys in --issuers)
and print it. For development, tests
and the demo; production tokens come from your identity provider.`,
		Example: `  openssl rand -hex 32 > hmac.key
  tenantproxy token --secret-file hmac.key --tenant 42 --ttl 1h
  tenantproxy token --secret-file hmac.key --tenant 42 --issuer https://idp.acme.example --scope read
  tenantproxy token --secret-file hmac.key --role support --issuer https://auth.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if secretFile == "" {
				return errors.New("--secret-file is required: the HMAC secret file the proxy verifies with (--jwt-key)")
			}
			if len(o.Tenants) == 0 && o.Role == "" {
				return errors.New("--tenant is required: give the tenant the token names (repeat it for several); only a token with --role (for the unscoped role) may name none")
			}
			if cmd.Flags().Changed("scope") {
				o.Scope = []string{}
				for _, s := range scopes {
					o.Scope = append(o.Scope, strings.Fields(s)...)
				}
			}
			secret, err := auth.ReadSecretFile(secretFile)
			if err != nil {
				return fmt.Errorf("--secret-file: %w", err)
			}
			tok, err := auth.Mint(secret, o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&secretFile, "secret-file", "", "file holding the HMAC secret, at least 32 bytes (required)")
	f.StringArrayVar(&o.Tenants, "tenant", nil, "tenant the token names (required; repeatable: several make an array)")
	f.DurationVar(&o.TTL, "ttl", time.Hour, "how long the token is valid")
	f.StringVar(&o.Issuer, "issuer", "", "iss claim")
	f.StringVar(&o.Subject, "subject", "dev", "sub claim")
	f.StringVar(&o.Audience, "audience", "", "aud claim")
	f.StringVar(&o.Role, "role", "", "role claim (with no --tenant, a token for the unscoped role)")
	f.StringVar(&o.RoleClaim, "role-claim", auth.DefaultRoleClaim, "claim that carries --role (a dotted path nests it)")
	f.StringArrayVar(&scopes, "scope", nil, `scope the token holds, written as one space-separated scope claim (repeatable; --scope "" gives a token with no scopes)`)
	f.StringVar(&o.ScopeClaim, "scope-claim", auth.DefaultScopeClaim, "claim that carries --scope")
	f.StringVar(&o.TenantClaim, "tenant-claim", auth.DefaultTenantClaim, "claim that names the tenant (a dotted path nests it)")
	return cmd
}
