package verify_test

import (
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/rewrite/verify"
)

// FuzzCheck feeds arbitrary SQL to Check: it must never panic (Check turns a
// panic into an "internal error" refusal, which counts as a failure here)
// and must give the same answer twice.
func FuzzCheck(f *testing.F) {
	for _, tc := range accepted {
		f.Add(tc.sql)
	}
	for _, tc := range rejected {
		f.Add(tc.sql)
	}
	p := policy()
	f.Fuzz(func(t *testing.T, sql string) {
		err := verify.Check(sql, p)
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("Check(%q) panicked: %v", sql, err)
		}
		again := verify.Check(sql, p)
		if (err == nil) != (again == nil) {
			t.Fatalf("Check(%q) is not deterministic: %v then %v", sql, err, again)
		}
	})
}
