package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// AnyTenant, alone in an issuer's tenants list, lets the issuer name every
// tenant that no other issuer of the file lists.
const AnyTenant = "*"

// issuer is one source of tokens: its keys and what it may say.
type issuer struct {
	name   string
	static *keySet     // keys from files; nil when there are none
	remote *remoteKeys // keys from a jwks_url; nil when there is none
	bound  bool        // the tenant list applies (issuers file)
	names  map[string]bool
	any    bool // "*": every tenant no other issuer lists
	// unscoped says whether its tokens may carry the unscoped role.
	unscoped bool
	where    string // "FILE line N", for messages
}

// issuersDoc is the --issuers file.
type issuersDoc struct {
	Issuers []issuerDoc `yaml:"issuers"`
}

type issuerDoc struct {
	Issuer   string      `yaml:"issuer"`
	Keys     []string    `yaml:"keys"`
	JWKSURL  string      `yaml:"jwks_url"`
	Tenants  []yaml.Node `yaml:"tenants"`
	Unscoped bool        `yaml:"unscoped"`
}

// issuerFields lists the fields of an issuer entry, for messages.
const issuerFields = "issuer, keys, jwks_url, tenants, unscoped"

// loadIssuers reads and checks an --issuers file. Every error names the
// file, the issuer (or the entry's line when it has none) and what to fix.
// Relative key paths are read relative to the file's directory.
func loadIssuers(path string, cfg *Config, cache *JWKSCache) ([]*issuer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--issuers %s: %w", path, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("--issuers %s: "+format, append([]any{path}, args...)...)
	}
	// The tree gives each entry's line and issuer for messages.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if strings.Contains(msg, "did not find expected alphabetic or numeric character") {
			msg += ` (a lone * is YAML syntax: quote it, tenants: ["*"])`
		}
		return nil, fail("%s", msg)
	}
	spans := entrySpans(&root)
	var doc issuersDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fail("%s", explainYAML(err, spans))
	}
	if len(doc.Issuers) == 0 {
		return nil, fail(`lists no issuers; write "issuers:" and one entry per issuer, each with issuer, keys or jwks_url, and tenants`)
	}

	dir := filepath.Dir(path)
	seen := map[string]int{}
	out := make([]*issuer, 0, len(doc.Issuers))
	for i, d := range doc.Issuers {
		line := 0
		if i < len(spans) {
			line = spans[i].line
		}
		if d.Issuer == "" {
			return nil, fail("entry %d (line %d) has no issuer; give the exact iss value its tokens carry", i+1, line)
		}
		at := func(format string, args ...any) error {
			return fail("issuer %q (line %d): "+format, append([]any{d.Issuer, line}, args...)...)
		}
		if first, dup := seen[d.Issuer]; dup {
			return nil, at("listed twice (first at line %d); merge the two entries into one", first)
		}
		seen[d.Issuer] = line
		iss := &issuer{name: d.Issuer, bound: true, names: map[string]bool{}, unscoped: d.Unscoped,
			where: fmt.Sprintf("%s line %d", path, line)}

		if len(d.Keys) == 0 && d.JWKSURL == "" {
			return nil, at("has no keys; give keys: (PEM public key, JWKS or HMAC secret files) or jwks_url: (the issuer's JWKS address)")
		}
		var keys []*key
		for n, file := range d.Keys {
			if file == "" {
				return nil, at("keys entry %d is empty; give a key file's path", n+1)
			}
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
			}
			ks, err := loadKeyFile(file)
			if err != nil {
				return nil, at("keys: %v", err)
			}
			keys = append(keys, ks...)
		}
		if len(keys) > 0 {
			iss.static = newKeySet(keys)
		}
		if d.JWKSURL != "" {
			if err := checkJWKSURL(d.JWKSURL); err != nil {
				return nil, at("jwks_url %q %v", d.JWKSURL, err)
			}
			iss.remote = cache.get(d.JWKSURL)
		}

		for n, node := range d.Tenants {
			t, err := tenantOfNode(&node)
			if err != nil {
				return nil, at("tenants entry %d (line %d) %v", n+1, node.Line, err)
			}
			if t == AnyTenant {
				iss.any = true
				continue
			}
			iss.names[t] = true
		}
		switch {
		case iss.any && len(iss.names) > 0:
			return nil, at(`tenants lists "*" beside other tenants; "*" stands for every tenant no other issuer lists: give it alone, or list the tenants`)
		case len(d.Tenants) == 0 && !d.Unscoped:
			return nil, at(`may speak for no tenant; list its tenants (tenants: [acme, "42"]) or "*" for every tenant no other issuer lists`)
		case d.Unscoped && cfg.UnscopedRole == "":
			return nil, at("has unscoped: true but no unscoped role is configured; set --unscoped-role, or remove unscoped: true")
		}
		out = append(out, iss)
	}
	return out, nil
}

// span is where one issuer entry starts and which issuer it names.
type span struct {
	line int
	name string
}

// entrySpans finds each entry of the issuers list in the YAML tree.
func entrySpans(root *yaml.Node) []span {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil
	}
	var spans []span
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "issuers" || top.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, e := range top.Content[i+1].Content {
			s := span{line: e.Line}
			for j := 0; e.Kind == yaml.MappingNode && j+1 < len(e.Content); j += 2 {
				if e.Content[j].Value == "issuer" {
					s.name = e.Content[j+1].Value
				}
			}
			spans = append(spans, s)
		}
	}
	return spans
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)
var yamlUnknownField = regexp.MustCompile(`field (\S+) not found in type auth\.(\w+)`)

// explainYAML rewrites the decoder's errors: each names the issuer whose
// entry holds the line, and an unknown field lists the known ones.
func explainYAML(err error, spans []span) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		where := ""
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			line, _ := strconv.Atoi(g[1])
			m = m[len(g[0]):]
			where = fmt.Sprintf("line %d: ", line)
			for i := len(spans) - 1; i >= 0; i-- {
				if spans[i].line <= line {
					name := fmt.Sprintf("entry %d", i+1)
					if spans[i].name != "" {
						name = fmt.Sprintf("issuer %q", spans[i].name)
					}
					where = fmt.Sprintf("%s (line %d): ", name, line)
					break
				}
			}
		}
		if g := yamlUnknownField.FindStringSubmatch(m); g != nil {
			if g[2] == "issuerDoc" {
				m = fmt.Sprintf("unknown field %q; an issuer has the fields %s", g[1], issuerFields)
			} else {
				m = fmt.Sprintf(`unknown field %q; the file holds one list, "issuers:"`, g[1])
			}
		}
		for _, r := range yamlTypes {
			if strings.HasSuffix(m, r[0]) {
				m = strings.TrimSuffix(m, r[0]) + r[1]
				break
			}
		}
		msgs = append(msgs, where+m)
	}
	return strings.Join(msgs, "; ")
}

// yamlTypes says in the file's words what a Go type in a decoder error
// stands for.
var yamlTypes = [][2]string{
	{" into []yaml.Node", "; tenants must be a list, such as tenants: [acme, 42]"},
	{" into []string", "; keys must be a list of files, such as keys: [idp.pem]"},
	{" into bool", "; unscoped must be true or false"},
	{" into string", "; issuer and jwks_url must be strings"},
	{" into []auth.issuerDoc", "; issuers must be a list of entries, each starting with - issuer:"},
	{" into auth.issuerDoc", "; an issuer entry must be a map (issuer: ..., keys: ..., tenants: ...)"},
	{" into auth.issuersDoc", "; the file must be a map holding issuers:"},
}

var decimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// tenantOfNode reads one tenants entry in the form a token's tenant claim
// takes: a string as written, an integer in canonical decimal.
func tenantOfNode(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("must be a string or an integer, not a list or a map")
	}
	switch n.Tag {
	case "!!str":
		switch {
		case n.Value == "":
			return "", errors.New("is an empty string; remove it")
		case strings.ContainsRune(n.Value, 0):
			return "", errors.New("holds a NUL character")
		}
		return n.Value, nil
	case "!!int":
		if !decimal.MatchString(n.Value) {
			return "", fmt.Errorf("%s is not a plain decimal integer (YAML may read it as hex, octal or with separators); write it in decimal without leading zeros, or quote it to keep it as written", n.Value)
		}
		v, _ := new(big.Int).SetString(n.Value, 10)
		return v.String(), nil
	}
	return "", fmt.Errorf("%q is a %s; tenants are strings or integers (quote it to make it a string)", n.Value, strings.TrimPrefix(n.Tag, "!!"))
}

// mayName reports whether iss may speak for tenant, given the tenants
// every issuer of the file lists by name.
func (iss *issuer) mayName(tenant string, listed map[string]bool) bool {
	if !iss.bound {
		return true
	}
	return iss.names[tenant] || (iss.any && !listed[tenant])
}

// issuerNames lists the issuers, in file order.
func issuerNames(list []*issuer) []string {
	names := make([]string, len(list))
	for i, iss := range list {
		names[i] = iss.name
	}
	return names
}
