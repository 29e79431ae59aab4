package proxy

import (
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	dto "github.com/prometheus/client_model/go"
	"github.com/tenantproxy/tenantproxy/rewrite"
)

// The relay gives the client its own channel names back (the tenant's
// prefix stripped) and its own process id for what its connection sent;
// a channel outside the session's space is dropped and counted, also for
// a session that has no channel space (a token naming several tenants).
func TestNotificationsKeepToTheTenantsSpace(t *testing.T) {
	m := NewMetrics()
	srv := &Server{cfg: Config{Metrics: m}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sc := &serverConn{pid: 4242}
	one := &session{srv: srv, log: log, keyPID: 77, channelPrefix: rewrite.ChannelPrefix("1")}
	p1, p2 := rewrite.ChannelPrefix("1"), rewrite.ChannelPrefix("2")
	for _, c := range []struct {
		s       *session
		pid     uint32
		channel string
		drop    bool
		want    string
		wantPID uint32
	}{
		{s: one, pid: 4242, channel: p1 + "orders", want: "orders", wantPID: 77},
		{s: one, pid: 9999, channel: p1 + "orders", want: "orders", wantPID: 9999},
		{s: one, pid: 9999, channel: p1 + p2 + "orders", want: p2 + "orders", wantPID: 9999},
		{s: one, pid: 9999, channel: p1, want: "", wantPID: 9999},
		{s: one, pid: 9999, channel: "orders", drop: true},
		{s: one, pid: 9999, channel: p2 + "orders", drop: true},
		{s: one, pid: 9999, channel: "tenantproxy_catalog", drop: true},
		{s: &session{srv: srv, log: log, keyPID: 78}, pid: 9999, channel: p1 + "orders", drop: true},
		{s: &session{srv: srv, log: log, keyPID: 78}, pid: 9999, channel: "orders", drop: true},
	} {
		n, ok := c.s.notification(sc, &pgproto3.NotificationResponse{PID: c.pid, Channel: c.channel, Payload: "x"})
		switch {
		case c.drop && ok:
			t.Errorf("%q relayed as %+v, want it dropped", c.channel, n)
		case c.drop:
		case !ok:
			t.Errorf("%q dropped, want %q", c.channel, c.want)
		case n.Channel != c.want || n.PID != c.wantPID || n.Payload != "x":
			t.Errorf("%q relayed as %+v, want channel %q pid %d", c.channel, n, c.want, c.wantPID)
		}
	}
	for outcome, want := range map[string]float64{"relayed": 4, "dropped": 5} {
		var d dto.Metric
		if err := m.notices.WithLabelValues(outcome).Write(&d); err != nil || d.GetCounter().GetValue() != want {
			t.Errorf("%s = %v (%v), want %v", outcome, d.GetCounter().GetValue(), err, want)
		}
	}
}
