package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/internal/diffcorpus"
)

// TestDifferentialCorpus is the isolation promise, measured: every corpus
// statement (internal/diffcorpus) runs, for each of three tenants, through
// one proxy on the shared database and directly on a database holding only
// that tenant's rows. Accepted reads return the same results; accepted
// writes leave the tenant's rows the same on both and every other tenant's
// rows untouched; refused statements come back as 42501 with nothing
// changed, and the session carries on. Both databases are reloaded after
// every write.
//
// It runs in both pool modes: in transaction mode the statements that
// would outlive a transaction (SQL PREPARE, WITH HOLD) must be refused.
func TestDifferentialCorpus(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) { differentialCorpus(t, mode) })
	}
}

func differentialCorpus(t *testing.T, mode string) {
	start := time.Now()
	e := newEnv(t, envOptions{schema: diffcorpus.Schema, tables: diffcorpus.Tables(), extraArgs: []string{"--pool-mode", mode}})
	shared := diffcorpus.DB{DSN: e.upstream, Conn: diffcorpus.Connect(t, e.upstream)}
	if err := shared.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	var tally diffcorpus.Tally
	for _, tenant := range diffcorpus.Tenants {
		d := diffcorpus.Differential{
			Tenant:  tenant,
			Session: diffcorpus.Session{Conn: e.connectToken(t, e.claimsToken(t, corpusClaims(tenant))).PgConn()},
			Shared:  shared,
			Own:     diffcorpus.NewDB(t, tenant),

			TransactionPooling: mode == "transaction",
		}
		d.RunAll(t, &tally)
	}
	// Printed, not logged: go test -v -run Differential shows it on success.
	fmt.Printf("differential corpus through the proxy in %s mode, runs (statement x tenant) per category, %s:\n%s",
		mode, time.Since(start).Round(time.Millisecond), tally.String())
}

// corpusClaims are the token claims of a tenant's session: the tenant claim
// and every other dimension the corpus binds tables to.
func corpusClaims(tenant string) map[string]any {
	claims := map[string]any{}
	for name, values := range diffcorpus.Claims(tenant) {
		if name == "" {
			name = "tenant_id"
		}
		claims[name] = values[0]
	}
	return claims
}
