package e2e_test

import (
	"context"
	bin "encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// frame is a protocol message: type byte, length, body.
func frame(typ byte, body []byte) []byte {
	out := append([]byte{typ}, bin.BigEndian.AppendUint32(nil, uint32(len(body)+4))...)
	return append(out, body...)
}

// withLength is a message whose length field says n, whatever follows.
func withLength(typ byte, n int32, body []byte) []byte {
	out := append([]byte{typ}, bin.BigEndian.AppendUint32(nil, uint32(n))...)
	return append(out, body...)
}

// startupBytes is a StartupMessage with the given parameters.
func startupBytes(params ...string) []byte {
	body := bin.BigEndian.AppendUint32(nil, 196608)
	for _, p := range params {
		body = append(append(body, p...), 0)
	}
	body = append(body, 0)
	return append(bin.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// closedWithin reads conn until the proxy closes it, and reports what it
// sent: the ErrorResponse codes seen.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) []string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	fe := pgproto3.NewFrontend(conn, conn)
	var codes []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the proxy kept the connection open for %s (codes so far %v)", d, codes)
			}
			return codes
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			codes = append(codes, e.Severity+" "+e.Code)
		}
	}
}

// metric reads one unlabelled metric from the proxy's /metrics.
func metric(t *testing.T, metrics, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s metric", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// goroutines reads go_goroutines from the proxy's metrics.
func goroutines(t *testing.T, metrics string) int {
	return int(metric(t, metrics, "go_goroutines"))
}

// TestHostileClients: bytes no driver would send, before and after
// authentication, each get an error where the protocol allows and a closed
// connection, never a hang; a well-behaved session beside them is
// unaffected; the proxy's goroutines return to where they were.
func TestHostileClients(t *testing.T) {
	metricsPort := freeAddr(t)
	e := newEnv(t, envOptions{extraArgs: []string{"--startup-timeout", "2s", "--max-message-size", "1048576", "--metrics-listen", metricsPort}})
	ctx := context.Background()
	good := e.connect(t, "1")
	check := func() {
		t.Helper()
		wantRows(t, column(t, good, "SELECT count(*)::text FROM orders"), "3")
	}
	check()
	baseline := goroutines(t, metricsPort)
	baseRSS := metric(t, metricsPort, "process_resident_memory_bytes")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}

	// Before authentication.
	before := map[string][]byte{
		"random bytes":                random(4096),
		"truncated startup":           startupBytes("user", "app")[:9],
		"negative startup length":     {0x80, 0, 0, 0, 0, 3, 0, 0},
		"huge startup length":         {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0},
		"startup length off by one":   append(bin.BigEndian.AppendUint32(nil, 9), 0, 3, 0, 0, 'x'),
		"unknown protocol":            append(bin.BigEndian.AppendUint32(nil, 8), 0, 9, 0, 0),
		"a query before startup":      frame('Q', []byte("SELECT 1\x00")),
		"thousands of parameters":     startupBytes(manyParams(5000)...),
		"a parameter without a value": startupBytes("user"),
	}
	for name, data := range before {
		t.Run("before auth: "+name, func(t *testing.T) {
			c := dial()
			defer c.Close()
			_, _ = c.Write(data)
			codes := closedWithin(t, c, 5*time.Second)
			if name == "thousands of parameters" && (len(codes) == 0 || !strings.HasPrefix(codes[0], "FATAL")) {
				t.Fatalf("thousands of parameters: %v, want a FATAL error", codes)
			}
			check()
		})
	}

	// After authentication.
	after := map[string][]byte{
		"random bytes":                 random(4096),
		"negative length":              withLength('Q', -5, nil),
		"huge length":                  withLength('Q', 1<<30, []byte("SELECT 1")),
		"length too short for a query": withLength('Q', 3, nil),
		"unknown message type":         frame('z', nil),
		"a startup message again":      startupBytes("user", "app"),
		"message over the size cap":    withLength('Q', 2<<20, nil),
	}
	for name, data := range after {
		t.Run("after auth: "+name, func(t *testing.T) {
			r := e.raw(t, "1")
			_, _ = r.conn.Write(data)
			codes := closedWithin(t, r.conn, 5*time.Second)
			if len(codes) == 0 || !strings.HasPrefix(codes[0], "FATAL") {
				t.Fatalf("%s: %v, want a FATAL error before the close", name, codes)
			}
			check()
		})
	}

	// Messages out of order answer like Postgres and the session goes on.
	t.Run("out of order", func(t *testing.T) {
		r := e.raw(t, "1")
		r.send(&pgproto3.Bind{PreparedStatement: "never_parsed"}, &pgproto3.Execute{Portal: "no_such_portal"}, &pgproto3.Sync{})
		got := strings.Join(r.until(), ",")
		if !strings.Contains(got, "Error 26000") {
			t.Fatalf("Bind of an unknown statement: %s", got)
		}
		r.send(&pgproto3.Execute{Portal: "no_such_portal"}, &pgproto3.Sync{})
		if got := strings.Join(r.until(), ","); !strings.Contains(got, "Error 34000") {
			t.Fatalf("Execute of an unknown portal: %s", got)
		}
		for range 2000 {
			r.fe.Send(&pgproto3.Sync{})
		}
		if err := r.fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			if got := r.until(); len(got) != 1 {
				t.Fatalf("Sync %d answered %v", i, got)
			}
		}
		r.send(&pgproto3.Query{String: "SELECT 1"})
		if got := strings.Join(r.until(), ","); !strings.Contains(got, "DataRow 1") {
			t.Fatalf("after the Sync storm: %s", got)
		}
		check()
	})

	// A client that sends a byte a second is cut off by the startup timeout.
	t.Run("slow client", func(t *testing.T) {
		c := dial()
		defer c.Close()
		msg := startupBytes("user", "app", "database", e.database)
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range msg {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		closedWithin(t, c, 10*time.Second)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("a byte-a-second client was served for %s", took)
		}
		c.Close()
		<-done
	})

	// Many connections opened and abandoned mid-startup.
	t.Run("abandoned startups", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
				if err != nil {
					return
				}
				_, _ = c.Write(startupBytes("user", "app", "database", e.database)[:i%12])
				c.Close()
			}()
		}
		wg.Wait()
		check()
	})

	eventually(t, 15*time.Second, "goroutines back to the baseline", func() error {
		if n := goroutines(t, metricsPort); n > baseline+5 {
			return fmt.Errorf("%d goroutines, %d before", n, baseline)
		}
		return nil
	})
	// Memory: nothing a hostile client sent is kept (a bound, not an
	// equality: the Go heap keeps some slack).
	if rss := metric(t, metricsPort, "process_resident_memory_bytes"); rss > baseRSS+64<<20 {
		t.Fatalf("resident memory %.0f MiB after the hostile clients, %.0f MiB before", rss/(1<<20), baseRSS/(1<<20))
	}
	_ = ctx
}

// freeAddr is a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// manyParams is n name/value pairs.
func manyParams(n int) []string {
	out := make([]string, 0, 2*n)
	for i := range n {
		out = append(out, fmt.Sprintf("application_name_%d", i), "x")
	}
	return out
}
