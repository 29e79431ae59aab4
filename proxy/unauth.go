package proxy

import (
	"container/list"
	"net"
	"sync"
)

// Connections that have not finished authenticating are counted apart from
// --max-client-conn: a client that sends nothing, or a startup packet and
// never a password, must not hold a slot an authenticated client needs.
// They get a small limit of their own, and when it is reached the oldest
// of them is closed to make room: a flood of idle handshakes costs the
// flood, never a client that authenticates promptly.

// unauthSet tracks the connections still authenticating, oldest first.
type unauthSet struct {
	mu    sync.Mutex
	limit int
	order *list.List // of net.Conn
}

func newUnauthSet(limit int) *unauthSet {
	return &unauthSet{limit: limit, order: list.New()}
}

// enter counts conn as authenticating and closes the oldest such
// connection when that makes more than the limit. The returned func
// counts conn out (authenticated, refused or gone); it is safe to call
// more than once.
func (u *unauthSet) enter(conn net.Conn) (leave func()) {
	u.mu.Lock()
	e := u.order.PushBack(conn)
	var oldest net.Conn
	if u.order.Len() > u.limit {
		first := u.order.Front()
		u.order.Remove(first)
		oldest = first.Value.(net.Conn)
	}
	u.mu.Unlock()
	if oldest != nil {
		// Its handshake read fails and its session ends, audited.
		_ = oldest.Close()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			for x := u.order.Front(); x != nil; x = x.Next() {
				if x == e {
					u.order.Remove(e)
					return
				}
			}
		})
	}
}
