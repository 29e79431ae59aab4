package rewrite

import "github.com/tenantproxy/tenantproxy/catalog"

// Scope is what one session may see: for each claim dimension, the tenant
// values its token holds. The key "" is the proxy's primary tenant claim.
type Scope struct {
	Values map[string][]string
}

// Decision is what the rewriter did with an accepted statement.
type Decision string

const (
	// Passed statements touch no tenant-bound relation and go upstream as sent.
	Passed Decision = "passed"
	// Rewritten statements were scoped to the session's tenants.
	Rewritten Decision = "rewritten"
	// Rejected statements never go upstream.
	Rejected Decision = "rejected"
)

// ParamCheck asks the session to check a bound parameter: the value bound to
// parameter Index (1-based) must be one of the scope's values for Claim.
type ParamCheck struct {
	Index int
	Claim string
}

// Result is an accepted statement string.
type Result struct {
	SQL         string
	Decision    Decision
	ParamChecks []ParamCheck
	// Tables lists the tenant-bound tables the statement was scoped on (schema.name).
	Tables []string
}

// Rejection is a refused statement: never sent upstream.
type Rejection struct {
	Code     string // SQLSTATE: 42501 for a refusal, 42601 for a syntax error
	Reason   string // what was refused and why, without the "tenantproxy: " prefix
	Hint     string // what to do about it
	Position int    // 1-based character position in the statement, 0 if none
}

func (r *Rejection) Error() string { return "tenantproxy: " + r.Reason }

// Config holds what does not change between statements.
type Config struct {
	// SearchPath resolves unqualified relation names (default ["public"]).
	SearchPath []string
}

// Rewriter scopes statements. It does no I/O and holds no mutable state.
type Rewriter struct{ cfg Config }

// New returns a Rewriter.
func New(cfg Config) *Rewriter {
	if len(cfg.SearchPath) == 0 {
		cfg.SearchPath = []string{"public"}
	}
	return &Rewriter{cfg: cfg}
}

var _ = catalog.TenantBound
