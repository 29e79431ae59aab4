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
// audit owns the event format and the chain. It must never drop an event
// silently: a write that fails is returned to the caller, and a sink whose
// write failed refuses every later event rather than leave a gap.
package audit
