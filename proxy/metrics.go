package proxy

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tenantproxy/tenantproxy/audit"
)

// Metrics are the proxy's Prometheus metrics, registered on their own
// registry (served by Handler).
type Metrics struct {
	registry *prometheus.Registry

	clients     prometheus.Gauge
	servers     prometheus.Gauge
	statements  *prometheus.CounterVec
	byDecision  map[string]prometheus.Counter // statements' counters, resolved once
	rewriteTime prometheus.Histogram
	upstream    prometheus.Histogram
	poolWaits   prometheus.Histogram
	poolTimeout prometheus.Counter
	notices     *prometheus.CounterVec
	mode        *prometheus.GaugeVec
}

// latencyBuckets run from 25 µs to 10 s.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 2.5, 14)

// NewMetrics creates the proxy's metrics with the Go runtime's and the
// process's collectors.
func NewMetrics() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry(), byDecision: map[string]prometheus.Counter{}}
	f := func(c prometheus.Collector) { m.registry.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.clients = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantproxy_client_connections",
		Help: "Client connections that completed authentication and are open."})
	m.servers = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantproxy_server_connections",
		Help: "Open upstream connections to Postgres."})
	m.statements = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantproxy_statements_total",
		Help: "Statement strings by decision: passed, rewritten or rejected; in shadow mode passed, would-rewrite or would-reject."}, []string{"decision"})
	m.rewriteTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantproxy_rewrite_seconds",
		Help: "Time to scope one statement string (parse, rewrite, verify, or a cache hit).", Buckets: latencyBuckets})
	m.upstream = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantproxy_upstream_seconds",
		Help: "Time from sending a statement upstream to its completion.", Buckets: latencyBuckets})
	m.poolWaits = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantproxy_pool_wait_seconds",
		Help: "Time a client waited for an upstream connection (transaction mode).", Buckets: latencyBuckets})
	m.poolTimeout = prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantproxy_pool_timeouts_total",
		Help: "Waits for an upstream connection that ended with --query-wait-timeout."})
	m.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantproxy_notifications_total",
		Help: "LISTEN/NOTIFY notifications from upstream: relayed to the client, or dropped because their channel is not in the session's tenant's space."}, []string{"outcome"})
	m.mode = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tenantproxy_mode",
		Help: "1 for the mode the proxy runs in: enforce, or shadow (statements run as clients send them: nothing is confined or refused, only audited)."}, []string{"mode"})
	for _, c := range []prometheus.Collector{m.clients, m.servers, m.statements, m.rewriteTime, m.upstream, m.poolWaits, m.poolTimeout, m.notices, m.mode} {
		f(c)
	}
	for _, d := range audit.Decisions {
		m.byDecision[d] = m.statements.WithLabelValues(d)
	}
	for _, o := range []string{"relayed", "dropped"} {
		m.notices.WithLabelValues(o)
	}
	return m
}

// Register adds collectors (the audit queue's, the rewrite cache's) to the
// registry.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	for _, c := range cs {
		m.registry.MustRegister(c)
	}
}

// Handler serves /metrics, /healthz (the process is up) and /readyz (ready
// reports whether the proxy can serve: catalog loaded, audit stream
// writable).
func (m *Metrics) Handler(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// The recording methods accept a nil *Metrics (metrics off).

func (m *Metrics) clientConnected(delta float64) {
	if m != nil {
		m.clients.Add(delta)
	}
}

func (m *Metrics) serverConnected(delta float64) {
	if m != nil {
		m.servers.Add(delta)
	}
}

func (m *Metrics) statement(decision string, rewrite time.Duration) {
	if m != nil {
		if c, ok := m.byDecision[decision]; ok {
			c.Inc()
		} else {
			m.statements.WithLabelValues(decision).Inc()
		}
		m.rewriteTime.Observe(rewrite.Seconds())
	}
}

// setMode marks the mode the server runs in.
func (m *Metrics) setMode(mode string) {
	if m != nil {
		m.mode.Reset()
		m.mode.WithLabelValues(mode).Set(1)
	}
}

func (m *Metrics) upstreamDone(d time.Duration) {
	if m != nil {
		m.upstream.Observe(d.Seconds())
	}
}

func (m *Metrics) poolWait(d time.Duration, timedOut bool) {
	if m != nil {
		m.poolWaits.Observe(d.Seconds())
		if timedOut {
			m.poolTimeout.Inc()
		}
	}
}

func (m *Metrics) notification(outcome string) {
	if m != nil {
		m.notices.WithLabelValues(outcome).Inc()
	}
}

// poolGauges exports the pool's connection counts.
func (m *Metrics) poolGauges(p *pool) {
	if m == nil {
		return
	}
	for _, g := range []struct {
		name, help string
		pick       func(open, idle, waiting int) int
	}{
		{"tenantproxy_pool_connections", "Upstream connections in the pool (lent, idle or being opened).", func(o, _, _ int) int { return o }},
		{"tenantproxy_pool_idle_connections", "Upstream connections waiting in the pool.", func(_, i, _ int) int { return i }},
		{"tenantproxy_pool_waiting_clients", "Clients waiting for an upstream connection.", func(_, _, w int) int { return w }},
	} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, func() float64 {
			return float64(g.pick(p.stats()))
		}))
	}
}
