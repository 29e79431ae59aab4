package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tenantproxy/tenantproxy/audit"
	"github.com/tenantproxy/tenantproxy/catalog"
	"github.com/tenantproxy/tenantproxy/proxy"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// newMetrics creates the proxy's metrics with the audit queue's and the
// rewrite cache's (cache may be nil: off).
func newMetrics(queue *audit.Queue, cache *rewrite.Cache, cat *catalog.Watcher) *proxy.Metrics {
	m := proxy.NewMetrics()
	st := queue.Stats()
	m.Register(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tenantproxy_audit_queue_depth",
			Help: "Audit events waiting to be written."}, func() float64 { return float64(queue.Depth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_audit_events_written_total",
			Help: "Audit events written to the stream."}, func() float64 { return float64(st.Written.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_audit_write_failures_total",
			Help: "Failed attempts to write a batch of audit events (retried until they succeed)."}, func() float64 { return float64(st.Failures.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_audit_events_rejected_total",
			Help: "Audit events not accepted (queue full or stream failing); their statements were refused."}, func() float64 { return float64(st.Rejected.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tenantproxy_catalog_version",
			Help: "Version of the tenant catalog in use."}, func() float64 { return float64(cat.Snapshot().Version()) }),
	)
	if cache != nil {
		stat := func(f func(rewrite.CacheStats) int64) func() float64 {
			return func() float64 { return float64(f(cache.Stats())) }
		}
		m.Register(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_rewrite_cache_hits_total",
				Help: "Statements served from a rewrite template."}, stat(func(s rewrite.CacheStats) int64 { return s.Hits })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_rewrite_cache_misses_total",
				Help: "Statements rewritten to make a template."}, stat(func(s rewrite.CacheStats) int64 { return s.Misses })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tenantproxy_rewrite_cache_bypasses_total",
				Help: "Statements rewritten without the cache (refusals, values that need quoting)."}, stat(func(s rewrite.CacheStats) int64 { return s.Bypasses })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tenantproxy_rewrite_cache_entries",
				Help: "Rewrite templates held."}, func() float64 { return float64(cache.Stats().Entries) }),
		)
	}
	return m
}

// serveMetrics serves /metrics, /healthz and /readyz on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, m *proxy.Metrics, queue *audit.Queue, cat *catalog.Watcher, profile bool, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	ready := func() error {
		if cat.Snapshot() == nil {
			return errors.New("no tenant catalog loaded")
		}
		if !queue.Healthy() {
			return errors.New("the audit stream cannot be written")
		}
		return nil
	}
	handler := m.Handler(ready)
	paths := "/metrics /healthz /readyz"
	if profile {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		handler, paths = mux, paths+" /debug/pprof/"
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "paths", paths)
	return nil
}
