package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStreamingMemoryIsBounded pushes a large COPY FROM into a tenant table
// and reads a large result back through the proxy, and checks the proxy's
// peak resident memory (VmHWM) stays bounded: neither is ever buffered
// whole. make test runs it small; make memory runs it at 1 GiB and 10
// million rows (TENANTPROXY_MEMORY_COPY_MB, TENANTPROXY_MEMORY_ROWS) and
// prints the figures.
func TestStreamingMemoryIsBounded(t *testing.T) {
	copyMB := envInt(t, "TENANTPROXY_MEMORY_COPY_MB", 48)
	rows := envInt(t, "TENANTPROXY_MEMORY_ROWS", 500_000)
	e := newEnv(t)
	pid := e.proxy.Process.Pid
	conn := e.connect(t, "1")
	ctx := context.Background()
	before := vmHWM(t, pid)

	// COPY FROM: rows of about 100 bytes, the tenant column filled by the proxy.
	start := time.Now()
	src := &copyRows{limit: int64(copyMB) << 20}
	tag, err := conn.PgConn().CopyFrom(ctx, src, "COPY orders (customer_id, total, note) FROM STDIN")
	if err != nil {
		t.Fatal(err)
	}
	copySecs := time.Since(start).Seconds()
	afterCopy := vmHWM(t, pid)
	// The same COPY straight into Postgres, for comparison.
	start = time.Now()
	if _, err := e.direct(t).PgConn().CopyFrom(ctx, &copyRows{limit: int64(copyMB) << 20, prefix: "2\t"}, "COPY orders (tenant_id, customer_id, total, note) FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	directSecs := time.Since(start).Seconds()

	// A large result: the copied rows and more, read row by row.
	start = time.Now()
	rr := conn.PgConn().ExecParams(ctx, fmt.Sprintf("SELECT o.id, o.note FROM orders o CROSS JOIN generate_series(1, %d) g WHERE o.id < 104 LIMIT %d", max(1, rows/3), rows), nil, nil, nil, nil)
	n := 0
	for rr.NextRow() {
		n++
	}
	if _, err := rr.Close(); err != nil {
		t.Fatal(err)
	}
	selectSecs := time.Since(start).Seconds()
	afterSelect := vmHWM(t, pid)
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	t.Logf("proxy VmHWM: %d MiB at start, %d MiB after a %d MiB COPY FROM (%d rows, %.1f MiB/s; %.1f MiB/s straight into Postgres), %d MiB after a %d-row SELECT (%.0f rows/s)",
		before>>10, afterCopy>>10, copyMB, tag.RowsAffected(), float64(copyMB)/copySecs, float64(copyMB)/directSecs, afterSelect>>10, rows, float64(rows)/selectSecs)
	// Bounded: a fixed allowance over the start, whatever the sizes.
	if limit := before + 96<<10; afterSelect > limit {
		t.Fatalf("proxy peak memory grew from %d KiB to %d KiB: something buffers whole results or copies", before, afterSelect)
	}
}

// copyRows is an io.Reader of COPY text rows for customer 1, up to limit
// bytes, each starting with prefix.
type copyRows struct {
	prefix      string
	limit, done int64
	row         int
	pending     []byte
}

func (c *copyRows) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending) == 0 {
			if c.done >= c.limit {
				break
			}
			c.row++
			c.pending = fmt.Appendf(nil, "%s1\t%d.%02d\tstreamed row %d %s\n", c.prefix, c.row%1000, c.row%100, c.row, strings.Repeat("x", 60))
			c.done += int64(len(c.pending))
		}
		k := copy(p[n:], c.pending)
		c.pending = c.pending[k:]
		n += k
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// vmHWM reads a process's peak resident set size in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc on this system: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
