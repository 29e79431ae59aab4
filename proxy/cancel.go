package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelTarget is where a client's CancelRequest must go upstream.
type cancelTarget struct {
	secret   []byte // the key the client was given
	network  string
	address  string
	upPID    uint32
	upSecret []byte
}

// cancelRegistry maps the BackendKeyData the proxy gave each client to its
// session's upstream backend.
type cancelRegistry struct {
	mu      sync.Mutex
	targets map[uint32]cancelTarget
}

func newCancelRegistry() cancelRegistry {
	return cancelRegistry{targets: map[uint32]cancelTarget{}}
}

// register allocates a fresh (pid, secret) pair for a session.
func (r *cancelRegistry) register(t cancelTarget) (pid uint32, secret []byte) {
	secret = make([]byte, 4)
	var b [4]byte
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		_, _ = rand.Read(b[:])
		_, _ = rand.Read(secret)
		pid = binary.BigEndian.Uint32(b[:]) & 0x7fffffff
		if _, taken := r.targets[pid]; pid != 0 && !taken {
			break
		}
	}
	t.secret = secret
	r.targets[pid] = t
	return pid, secret
}

// retarget points a client's key at another upstream backend (transaction
// mode lends a new one per transaction; an empty target ignores cancels).
func (r *cancelRegistry) retarget(pid uint32, t cancelTarget) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.targets[pid]; ok {
		t.secret = old.secret
		r.targets[pid] = t
	}
}

func (r *cancelRegistry) unregister(pid uint32) {
	r.mu.Lock()
	delete(r.targets, pid)
	r.mu.Unlock()
}

// forward sends the upstream CancelRequest for a client's key. Unknown keys
// are ignored, as Postgres does.
func (r *cancelRegistry) forward(ctx context.Context, req *pgproto3.CancelRequest) (bool, error) {
	r.mu.Lock()
	t, ok := r.targets[req.ProcessID]
	r.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(t.secret, req.SecretKey) != 1 {
		return false, nil
	}
	if t.address == "" {
		return true, nil // the client holds no upstream connection: nothing runs
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, t.network, t.address)
	if err != nil {
		return true, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	buf, err := (&pgproto3.CancelRequest{ProcessID: t.upPID, SecretKey: t.upSecret}).Encode(nil)
	if err != nil {
		return true, err
	}
	if _, err := conn.Write(buf); err != nil {
		return true, err
	}
	// Postgres closes the connection once it has read the request.
	_, _ = conn.Read(make([]byte, 1))
	return true, nil
}
