//go:build !linux

package proxy

import "log/slog"

// parker is Linux's (park_linux.go); elsewhere idle sessions keep their
// goroutines.
type parker struct{}

func newParker(*slog.Logger) *parker { return nil }
func (p *parker) park(*session) bool { return false }
func (p *parker) wake(*session)      {}
func (p *parker) wakeAll()           {}
func (p *parker) count() int         { return 0 }
