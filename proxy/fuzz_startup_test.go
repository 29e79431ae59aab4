package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// startupPacket frames a startup-phase message: length, then body.
func startupPacket(body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	return append(out, body...)
}

// FuzzStartup feeds arbitrary client bytes to the startup phase: it must
// end with a startup message, an error, or a cancel, never hang or panic,
// and whatever parameters it accepts must pass the parameter check or be
// refused by it with an error.
func FuzzStartup(f *testing.F) {
	v30 := binary.BigEndian.AppendUint32(nil, 196608)
	f.Add(startupPacket(append(append(v30, "user\x00app\x00database\x00db\x00"...), 0)))
	f.Add(startupPacket(append(append(v30, "options\x00-c role=x\x00"...), 0)))
	f.Add(startupPacket(binary.BigEndian.AppendUint32(nil, 80877103))) // SSLRequest
	f.Add(startupPacket(binary.BigEndian.AppendUint32(nil, 80877104))) // GSSENCRequest
	f.Add(append(startupPacket(binary.BigEndian.AppendUint32(nil, 80877103)), startupPacket(append(v30, 0))...))
	f.Add(startupPacket(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 80877102), 7), 9)))
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0})
	f.Add(startupPacket(binary.BigEndian.AppendUint32(nil, 196610))) // 3.2
	srv := &Server{cfg: Config{MaxMessageSize: 1 << 16, StartupTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), cancels: newCancelRegistry()}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, client) }() // the proxy's answers
		go func() {
			_, _ = client.Write(data)
			client.Close()
		}()
		s := newSession(srv, server)
		s.ctx = context.Background()
		_ = server.SetDeadline(time.Now().Add(2 * time.Second))
		done := make(chan struct{})
		go func() {
			defer close(done)
			start, err := s.handshake()
			if err != nil || start == nil {
				return
			}
			_, _ = startupParams(start.Parameters)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the startup phase did not end on %q", data)
		}
		server.Close()
	})
}
