// Package audit records what the proxy allowed, rewrote and refused, as a
// hash-chained stream of JSON events, one per line.
//
// Each event carries a sequence number, the hash of the event before it
// (prev_hash, empty for the first) and its own hash:
//
//	hash = hex(sha256(prev_hash || json(event without its hash field)))
//
// where json is encoding/json's output for Event (fixed field order). Any
// edit, insertion, deletion or reordering of lines breaks the chain, and
// VerifyChain says on which line.
//
// audit owns the event format, the chain and the group commit (Queue). It
// must never drop an event silently: a write that fails keeps its events and
// is retried; while it fails, events of what is about to happen are refused
// (or held) and counted, and events of what already happened wait in
// memory. A sink that cannot undo a torn write stops rather than leave a
// gap.
package audit
