package proxy

import (
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// Shadow mode runs only with one upstream connection per client.
func TestShadowModeNeedsSessionPooling(t *testing.T) {
	for _, c := range []struct {
		mode, pool, err string
	}{
		{"", "", ""},
		{ModeEnforce, PoolTransaction, ""},
		{ModeShadow, PoolSession, ""},
		{ModeShadow, PoolTransaction, "shadow mode needs pool mode session"},
		{ModeShadow, "", "shadow mode needs pool mode session"},
		{"audit-only", PoolSession, `mode "audit-only"`},
	} {
		err := checkMode(Config{Mode: c.mode, PoolMode: c.pool})
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("mode %q, pool %q: %v, want %q", c.mode, c.pool, err, c.err)
		}
	}
}

// The audit stream records the rewriter's decision as it is in enforce
// mode, and as what enforce mode would have done in shadow mode.
func TestShadowDecisions(t *testing.T) {
	enforce, shadow := &session{}, &session{shadow: true}
	for d, want := range map[rewrite.Decision][2]string{
		rewrite.Passed:    {"passed", "passed"},
		rewrite.Rewritten: {"rewritten", "would-rewrite"},
		rewrite.Rejected:  {"rejected", "would-reject"},
	} {
		if got := [2]string{enforce.decision(d), shadow.decision(d)}; got != want {
			t.Errorf("%s: %v, want %v", d, got, want)
		}
	}
}
