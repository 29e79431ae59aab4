package rewrite

import (
	"fmt"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/tenantproxy/tenantproxy/catalog"
)

// Schema-per-tenant isolation (Config.TenantSchema): every tenant's tables
// live in a schema of its own, named by a pattern ("tenant_{tenant}").
// A relation the catalog does not know, named unqualified or with the
// session's own schema, is the tenant's own and is emitted qualified with
// that schema; a reference to a schema the pattern names for another tenant
// is refused; catalogued tables of the shared schemas keep their rules
// (global tables read, tenant-bound tables filtered as in row isolation).

// TenantPlaceholder is where the tenant value goes in a --tenant-schema
// pattern.
const TenantPlaceholder = catalog.TenantPlaceholder

// maxIdentifier is the longest name Postgres keeps (NAMEDATALEN - 1);
// longer names are cut, which could make two tenants' schemas one.
const maxIdentifier = 63

// ValidateTenantSchema checks a --tenant-schema pattern: {tenant} exactly
// once, and the rest a plain lower-case name part.
func ValidateTenantSchema(pattern string) error {
	if strings.Count(pattern, TenantPlaceholder) != 1 {
		return fmt.Errorf("tenant schema pattern %q must contain %s exactly once, as in tenant_%s", pattern, TenantPlaceholder, TenantPlaceholder)
	}
	rest := strings.Replace(pattern, TenantPlaceholder, "", 1)
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("tenant schema pattern %q may hold only lower-case letters, digits and _ besides %s", pattern, TenantPlaceholder)
		}
	}
	if len(rest) >= maxIdentifier {
		return fmt.Errorf("tenant schema pattern %q leaves no room for the tenant in a %d-byte name", pattern, maxIdentifier)
	}
	return nil
}

// TenantSchemaName is the schema of a session's tenant: the pattern with
// the one tenant value in place. A session must name exactly one tenant.
func TenantSchemaName(pattern string, tenants []string) (string, error) {
	if len(tenants) != 1 || tenants[0] == "" {
		return "", fmt.Errorf("schema-per-tenant isolation needs exactly one tenant per session; the token names %d", len(tenants))
	}
	name := strings.Replace(pattern, TenantPlaceholder, tenants[0], 1)
	if len(name) > maxIdentifier {
		return "", fmt.Errorf("the tenant's schema name %q is longer than Postgres's %d bytes", name, maxIdentifier)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("the tenant value holds a NUL byte")
	}
	return name, nil
}

// tenantSchemaTable resolves a relation the catalog does not know under
// schema-per-tenant isolation. handled is false when the name is neither
// the tenant's nor another tenant's (the caller refuses it as uncatalogued).
func (w *walker) tenantSchemaTable(rv *pg.RangeVar, schema, name string) (t catalog.Table, handled bool) {
	own := w.ownSchema
	if w.ownSchemaErr != nil {
		w.fail(refuseHint("use a token that names one tenant", "%v", w.ownSchemaErr))
		return catalog.Table{}, true
	}
	switch {
	case schema == "" || schema == own:
		rv.Schemaname = own
		w.changed = true
		return catalog.Table{Schema: own, Name: name, Kind: catalog.Global, Writable: true, TenantSchema: true}, true
	case catalog.MatchTenantSchema(w.cfg.TenantSchema, schema):
		w.fail(&Rejection{Code: codeRefused, Position: int(rv.GetLocation()) + 1,
			Reason: fmt.Sprintf("schema %s belongs to another tenant", schema),
			Hint:   "name your own tables unqualified (they resolve to your tenant's schema)"})
		return catalog.Table{}, true
	}
	return catalog.Table{}, false
}

// plainNames memoizes plainIdentifier (bounded: past the cap, names are
// checked each time).
var plainNames sync.Map

const plainNamesCap = 100000

var plainNamesLen = struct {
	sync.Mutex
	n int
}{}

// plainIdentifier reports whether Postgres's deparser prints name without
// quotes: lower-case letters, digits, _ and $, not starting with a digit or
// $, and not a keyword that needs quoting.
func plainIdentifier(name string) bool {
	if v, ok := plainNames.Load(name); ok {
		return v.(bool)
	}
	plain := name != "" && len(name) <= maxIdentifier
	for i := 0; plain && i < len(name); i++ {
		c := name[i]
		plain = c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '$')
	}
	if plain {
		res, err := pg.Scan(name)
		toks := res.GetTokens()
		plain = err == nil && len(toks) == 1 && (toks[0].GetKeywordKind() == pg.KeywordKind_NO_KEYWORD || toks[0].GetKeywordKind() == pg.KeywordKind_UNRESERVED_KEYWORD)
	}
	plainNamesLen.Lock()
	if plainNamesLen.n < plainNamesCap {
		plainNamesLen.n++
		plainNames.Store(name, plain)
	}
	plainNamesLen.Unlock()
	return plain
}
