package rewrite

import (
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
)

// The scanner output read field by field gives the same tokens as the
// library's own decoding.
func TestEachTokenMatchesScan(t *testing.T) {
	for _, sql := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
		"SELECT E'a\\'b', $$x$$, 'a'\n'b', -5, 1.5e3, x'1f', 2147483648 -- c\n /* d */ ;",
		"SELECT U&'d\\0061' UESCAPE '!', U&\"x\"",
		"",
	} {
		want, err := pg.Scan(sql)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := parser.ScanToProtobuf(sql)
		if err != nil {
			t.Fatal(err)
		}
		var got []*pg.ScanToken
		if err := eachToken(buf, func(start, end int, token pg.Token) {
			got = append(got, &pg.ScanToken{Start: int32(start), End: int32(end), Token: token})
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.GetTokens()) {
			t.Fatalf("%q: %d tokens, want %d", sql, len(got), len(want.GetTokens()))
		}
		for i, w := range want.GetTokens() {
			if g := got[i]; g.Start != w.Start || g.End != w.End || g.Token != w.Token {
				t.Fatalf("%q token %d: %v, want %v", sql, i, g, w)
			}
		}
	}
}

// Constants are spelt as the deparser prints them, or not at all.
func TestCanonicalLiteral(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind byte
		want string
		ok   bool
	}{
		{"'abc'", 's', "'abc'", true},
		{"'it''s'", 's', "'it''s'", true},
		{`'a\b'`, 's', `E'a\\b'`, true},
		{"$$x'y$$", 's', "'x''y'", true},
		{"$q$a$$b$q$", 's', "'a$$b'", true},
		{`E'a\'b\\c\n'`, 's', "E'a''b\\\\c\n'", true},
		{`e'\q'`, 's', "'q'", true},
		{`E'\x41'`, 's', "", false},
		{`E'\101'`, 's', "", false},
		{"'a'\n'b'", 's', "", false},
		{"007", 'i', "7", true},
		{"0", 'i', "0", true},
		{"1.50", 'f', "1.50", true},
	} {
		got, ok := canonicalLiteral(c.in, c.kind)
		if got != c.want || ok != c.ok {
			t.Errorf("canonicalLiteral(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
