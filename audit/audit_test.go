package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tenantproxy/tenantproxy/audit"
)

// chain writes events with the given SQL to a buffer and returns its lines,
// each with its newline.
func chain(t *testing.T, sqls ...string) []string {
	t.Helper()
	var buf bytes.Buffer
	s := audit.NewJSONLSink(&buf, nil)
	for _, sql := range sqls {
		if err := s.Write(audit.Event{Kind: "statement", SQL: sql}); err != nil {
			t.Fatal(err)
		}
	}
	return strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func TestHashIsPrevHashThenEventWithoutHash(t *testing.T) {
	lines := chain(t, "SELECT 1", "SELECT 2")
	prev := ""
	for i, line := range lines {
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Time.IsZero() {
			t.Fatalf("line %d: %+v", i+1, e)
		}
		hash := e.Hash
		e.Hash = ""
		body, _ := json.Marshal(e)
		sum := sha256.Sum256(append([]byte(prev), body...))
		if hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("line %d: hash %s is not sha256(prev_hash || event)", i+1, hash)
		}
		prev = hash
	}
}

func TestVerifyChainFindsTampering(t *testing.T) {
	l := chain(t, "SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4")
	cases := []struct {
		name  string
		lines []string
		says  string // empty: the chain is intact
	}{
		{"intact", l, ""},
		{"tail cut off", l[:3], ""},
		{"modified", []string{l[0], strings.Replace(l[1], "SELECT 2", "SELECT 9", 1), l[2]}, "line 2 (seq 2): event was modified"},
		{"field added", []string{l[0], strings.Replace(l[1], `{"seq"`, `{"x":1,"seq"`, 1)}, "line 2 (seq 2): event was modified: the line is not as written"},
		{"key case changed", []string{l[0], strings.Replace(l[1], `"sql"`, `"SQL"`, 1)}, "line 2 (seq 2): event was modified"},
		{"whitespace added", []string{l[0], strings.Replace(l[1], `,"kind"`, `, "kind"`, 1)}, "line 2 (seq 2): event was modified"},
		{"deleted", []string{l[0], l[2]}, "line 2 (seq 3): expected seq 2"},
		{"duplicated", []string{l[0], l[1], l[1]}, "line 3 (seq 2): expected seq 3"},
		{"reordered", []string{l[0], l[2], l[1]}, "line 2 (seq 3): expected seq 2"},
		{"head cut off, first line forged", []string{strings.Replace(l[1], `"seq":2`, `"seq":1`, 1)}, "line 1 (seq 1): event was modified"},
		{"not json", []string{l[0], "hello\n"}, "line 2: not an audit event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := audit.VerifyChain(strings.NewReader(strings.Join(c.lines, "")))
			if c.says == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %q", err, c.says)
			}
		})
	}
}

func TestChainSurvivesOddText(t *testing.T) {
	// Every string field holds invalid UTF-8 and characters encoding/json
	// escapes; the chain must still verify.
	var e audit.Event
	v := reflect.ValueOf(&e).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("a\xffb<&>\u2028\"\\")
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"t\xfe", "<u>"}))
		}
	}
	e.DurationMS = 0.1 + 0.2
	var buf bytes.Buffer
	s := audit.NewJSONLSink(&buf, nil)
	for i := 0; i < 3; i++ {
		if err := s.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := audit.VerifyChain(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
}

func TestChainContinuesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	big := strings.Repeat("x", 200<<10) // longer than one read chunk
	for round := 0; round < 3; round++ {
		s, err := audit.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{"SELECT 1", big} {
			if err := s.Write(audit.Event{Kind: "statement", SQL: sql}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 6 {
		t.Fatalf("%d lines, want 6", n)
	}
	if err := audit.VerifyChain(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"seq":6,`)) {
		t.Fatal("the sequence did not continue across reopening")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenFileRefusesAFileThatIsNotAChain(t *testing.T) {
	for name, content := range map[string]string{
		"partial line": "{\"seq\":1,\"ti\n",
		"not an event": "hello\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.OpenFile(path); err == nil || !strings.Contains(err.Error(), "move it aside") {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestConcurrentWritesStayChained(t *testing.T) {
	var buf bytes.Buffer
	s := audit.NewJSONLSink(&buf, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := s.Write(audit.Event{Kind: "statement", SQL: "SELECT 1"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := audit.VerifyChain(&buf); err != nil {
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
	var buf bytes.Buffer
	s = audit.NewJSONLSink(&buf, func() error { return os.ErrPermission })
	if err := s.Write(audit.Event{Kind: "statement"}); err == nil {
		t.Fatal("a failed sync was not reported")
	}
}

// A crash can tear the last line. The torn file is kept aside, the chain
// continues in a new file from the last complete event, and verifying the
// series reports the torn line instead of tampering.
func TestTornFileIsSetAsideAndTheChainContinues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SELECT 1", "SELECT 2"} {
		if err := s.Write(audit.Event{Kind: "statement", SQL: sql}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":3,"time":"2026-`)
	f.Close()
	s, err = audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(audit.Event{Kind: "statement", SQL: "SELECT 3"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	aside, _ := filepath.Glob(path + ".torn-*")
	if len(aside) != 1 {
		t.Fatalf("torn file not set aside: %v", aside)
	}
	r, err := audit.VerifyFiles([]string{aside[0], path})
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 3 || r.LastSeq != 3 || len(r.Torn) != 1 || !strings.Contains(r.Torn[0], "line 3 is torn after seq 2") {
		t.Fatalf("report %+v", r)
	}
}
