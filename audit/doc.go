// Package audit records what the proxy allowed, rewrote and refused, as a
// hash-chained stream of JSON events: each event carries a sequence number
// and the SHA-256 of the event before it, so any edit, insertion, deletion
// or reordering breaks the chain (VerifyChain finds where). A write that
// fails is returned to the caller, never dropped silently.
package audit
