package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/audit"
)

func TestChainContinuesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for round := 0; round < 2; round++ {
		s, err := audit.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := s.Write(audit.Event{Kind: "statement", SQL: "SELECT 1", Decision: "passed"}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 6 {
		t.Fatalf("%d lines", n)
	}
	if err := audit.VerifyChain(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"seq":6`) {
		t.Fatal("sequence did not continue")
	}
}

func TestVerifyChainFindsTampering(t *testing.T) {
	var buf bytes.Buffer
	s := audit.NewJSONLSink(&buf, nil)
	for _, sql := range []string{"SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"} {
		if err := s.Write(audit.Event{Kind: "statement", SQL: sql}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
	cases := map[string]struct {
		lines []string
		says  string
	}{
		"modified":  {[]string{lines[0], strings.Replace(lines[1], "SELECT 2", "SELECT 9", 1), lines[2]}, "line 2 (seq 2): event was modified"},
		"deleted":   {[]string{lines[0], lines[2]}, "line 2 (seq 3): expected seq 2"},
		"reordered": {[]string{lines[0], lines[2], lines[1]}, "line 2 (seq 3)"},
	}
	for name, c := range cases {
		err := audit.VerifyChain(strings.NewReader(strings.Join(c.lines, "")))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %q", name, err, c.says)
		}
	}
	if err := audit.VerifyChain(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteErrorsAreReturned(t *testing.T) {
	s := audit.NewJSONLSink(failingWriter{}, nil)
	if err := s.Write(audit.Event{Kind: "statement"}); err == nil {
		t.Fatal("a failed write was not reported")
	}
	if err := s.Write(audit.Event{Kind: "statement"}); err == nil {
		t.Fatal("a write after a failure was accepted")
	}
}
