package proxy

import (
	"log/slog"
	"sync"
	"syscall"
)

// A session idle between transactions (transaction mode: it holds no
// upstream connection and has nothing unread) parks: its goroutine
// returns, and the parker watches the client's socket with an epoll of its
// own. When the client sends something, hangs up, or the server needs the
// session (shutdown, Close), the session resumes in a new goroutine with
// a fresh stack. An idle client then costs its session's state and no
// goroutine, as an idle client of an event-loop pooler does.
type parker struct {
	epfd int
	log  *slog.Logger

	mu     sync.Mutex
	parked map[uint64]*session
	next   uint64
}

// newParker starts the parker's goroutine; nil when epoll is unavailable
// (sessions then never park).
func newParker(log *slog.Logger) *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Warn("idle sessions keep their goroutines: epoll unavailable", "err", err)
		return nil
	}
	p := &parker{epfd: fd, log: log, parked: map[uint64]*session{}}
	go p.run()
	return p
}

// park registers s, whose goroutine then returns; false when its client
// connection cannot be watched (TLS, or not a socket), and it must not.
func (p *parker) park(s *session) bool {
	if p == nil || s.tls {
		return false
	}
	sc, ok := s.conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return false
	}
	if w, ok := s.be.(*clientWire); ok {
		w.park()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	key := p.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(key), Pad: int32(key >> 32)}
	p.parked[key] = s
	s.parkKey, s.parkFD = key, fd
	// Data already there fires at once: no wake-up is lost.
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(p.parked, key)
		s.parkKey = 0
		return false
	}
	return true
}

// unpark removes s if it is parked and reports whether it was (mu held).
func (p *parker) unparkLocked(key uint64) *session {
	s, ok := p.parked[key]
	if !ok {
		return nil
	}
	delete(p.parked, key)
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, s.parkFD, nil)
	s.parkKey = 0
	return s
}

// wake resumes s now if it is parked (its connection is about to be closed,
// or the server is shutting down).
func (p *parker) wake(s *session) {
	if p == nil {
		return
	}
	p.mu.Lock()
	key := s.parkKey
	var woken *session
	if key != 0 {
		woken = p.unparkLocked(key)
	}
	p.mu.Unlock()
	if woken != nil {
		go woken.resume()
	}
}

// wakeAll resumes every parked session.
func (p *parker) wakeAll() {
	if p == nil {
		return
	}
	p.mu.Lock()
	var woken []*session
	for key := range p.parked {
		woken = append(woken, p.unparkLocked(key))
	}
	p.mu.Unlock()
	for _, s := range woken {
		go s.resume()
	}
}

// count is how many sessions are parked.
func (p *parker) count() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

func (p *parker) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			p.log.Error("the idle-session watcher failed; parked sessions are resumed", "err", err)
			p.wakeAll()
			return
		}
		p.mu.Lock()
		var woken []*session
		for _, ev := range events[:n] {
			if s := p.unparkLocked(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32); s != nil {
				woken = append(woken, s)
			}
		}
		p.mu.Unlock()
		for _, s := range woken {
			go s.resume()
		}
	}
}
