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
		secretFile, keyFile string
		scopes              []string
		o                   auth.MintOptions
	)
	cmd := &cobra.Command{
		Use:   "token (--secret-file FILE | --key-file FILE) --tenant ID [--tenant ID ...] [--issuer ISS] [--role ROLE] [--scope SCOPE ...]",
		Short: "Mint a token for development and tests",
		Long: `Mint a token and print it, for development, tests and the demo; production
tokens come from your identity provider.

--secret-file signs HS256 with an HMAC secret (the same file the proxy is
given as --jwt-key, or as an issuer's keys in --issuers). --key-file signs
with a PEM private key, RS256, ES256/384/512 or EdDSA by its kind; the proxy
verifies with the public key (openssl pkey -in KEY -pubout) or a JWKS
holding it, picked by --kid.`,
		Example: `  openssl rand -hex 32 > hmac.key
  tenantproxy token --secret-file hmac.key --tenant 42 --ttl 1h
  tenantproxy token --secret-file hmac.key --tenant 42 --issuer https://idp.acme.example --scope read
  tenantproxy token --secret-file hmac.key --role support --issuer https://auth.example.com
  openssl genpkey -algorithm ed25519 -out idp.key && openssl pkey -in idp.key -pubout -out idp.pub
  tenantproxy token --key-file idp.key --tenant 42   # the proxy: --jwt-key idp.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (secretFile == "") == (keyFile == "") {
				return errors.New("give one of --secret-file (the HMAC secret file the proxy verifies with, --jwt-key) and --key-file (a PEM private key whose public key the proxy has)")
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
			var key auth.SigningKey
			if keyFile != "" {
				k, err := auth.ReadSigningKeyFile(keyFile)
				if err != nil {
					return fmt.Errorf("--key-file %s: %w", keyFile, err)
				}
				key = k
			} else {
				secret, err := auth.ReadSecretFile(secretFile)
				if err != nil {
					return fmt.Errorf("--secret-file: %w", err)
				}
				if key, err = auth.HMACSigningKey(secret); err != nil {
					return fmt.Errorf("--secret-file %s: %w", secretFile, err)
				}
			}
			tok, err := key.Mint(o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&secretFile, "secret-file", "", "file holding the HMAC secret, at least 32 bytes: signs HS256")
	f.StringVar(&keyFile, "key-file", "", "PEM private key (RSA, ECDSA P-256/384/521, Ed25519; unencrypted): signs RS256, ES256/384/512 or EdDSA")
	f.StringVar(&o.KeyID, "kid", "", "kid header: the key of a JWKS that verifies the token")
	f.StringArrayVar(&o.Tenants, "tenant", nil, "tenant the token names (required unless --role; repeatable: several make an array)")
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
