package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/internal/pgtest"
)

// TestMetrics: --metrics-listen serves Prometheus metrics that follow what
// the proxy did (connections, decisions, rewrite cache hits across
// tenants), and the health and readiness endpoints.
func TestMetrics(t *testing.T) {
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := newEnv(t, envOptions{extraArgs: []string{"--metrics-listen", addr}})
	ctx := context.Background()
	one, two := e.connect(t, "1"), e.connect(t, "2")
	for i := 0; i < 3; i++ {
		_, _ = one.Exec(ctx, "SELECT * FROM orders WHERE total > 1", pgxSimple)
		_, _ = two.Exec(ctx, "SELECT * FROM orders WHERE total > 1", pgxSimple)
	}
	_, _ = one.Exec(ctx, "SELECT * FROM secrets", pgxSimple)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	value := func(body, metric string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + ` ([0-9.e+]+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("metric %s missing", metric)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	var body string
	eventually(t, 5*time.Second, "metrics", func() error {
		_, body = get("/metrics")
		if value(body, `tenantproxy_statements_total{decision="rejected"}`) < 1 {
			return fmt.Errorf("no rejection counted yet")
		}
		return nil
	})
	for metric, min := range map[string]float64{
		`tenantproxy_client_connections`:                     2,
		`tenantproxy_server_connections`:                     1,
		`tenantproxy_pool_connections`:                       1,
		`tenantproxy_pool_wait_seconds_count`:                2,
		`tenantproxy_statements_total{decision="rewritten"}`: 6,
		`tenantproxy_rewrite_cache_hits_total`:               5,
		`tenantproxy_rewrite_seconds_count`:                  7,
		`tenantproxy_upstream_seconds_count`:                 6,
		`tenantproxy_audit_events_written_total`:             1,
		`tenantproxy_catalog_version`:                        1,
	} {
		if v := value(body, metric); v < min {
			t.Errorf("%s = %v, want at least %v", metric, v, min)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, b := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, b)
	}
}

// Bad serve flags stop the proxy at start with a message naming the flag.
func TestServeRefusesBadFlags(t *testing.T) {
	e := newEnv(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rewrite-cache-size", "-1"}, "--rewrite-cache-size"},
		{[]string{"--metrics-listen", busy.Addr().String()}, "--metrics-listen"},
		{[]string{"--audit-on-failure", "drop"}, "--audit-on-failure"},
	} {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--upstream", e.upstream,
			"--jwt-key", e.keyFile, "--audit-file", filepath.Join(e.dir, "bad-flags.jsonl")}, c.args...)
		// A flag wrongly accepted would leave the proxy serving: bound the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, binary(t), args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: %v\n%s", c.args, err, out)
		}
	}
}
