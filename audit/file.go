package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// OpenFile opens an audit file for appending ("-" is stdout), creating it
// with mode 0600. When the file already holds events, the chain continues
// from its last event's seq and hash. A file whose last line was torn by a
// crash is renamed to PATH.torn-TIME (kept for verify, which reports the
// torn line) and a new file continues the chain from its last complete
// event. A file whose last complete line is not an event is refused.
func OpenFile(path string) (*JSONLSink, error) {
	if path == "-" {
		return NewJSONLSink(os.Stdout, nil), nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	last, torn, err := tail(f)
	var prev *Event
	if err == nil && last != nil {
		var e Event
		if json.Unmarshal(last, &e) != nil || e.Hash == "" {
			err = errors.New("its last complete line is not an audit event")
		} else {
			prev = &e
		}
	}
	if err == nil && torn {
		f.Close()
		aside := path + ".torn-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path, aside); err != nil {
			return nil, fmt.Errorf("audit file %s ends in a torn line; moving it aside: %w", path, err)
		}
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return nil, err
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w; move it aside to start a new chain", path, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w", path, err)
	}
	s := NewJSONLSink(f, nil)
	s.file, s.close, s.path, s.size = f, f.Close, path, size
	if prev != nil {
		s.seq, s.prev = prev.Seq, prev.Hash
	}
	return s, nil
}

// tail returns the last complete line of f (without its newline; nil when
// there is none) and whether bytes follow it: a line torn mid-write.
func tail(f *os.File) ([]byte, bool, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size == 0 {
		return nil, false, err
	}
	var buf []byte // the last bytes of the file, read backwards in chunks
	const chunk = 64 << 10
	newlines := func() []int {
		var at []int
		for i := len(buf) - 1; i >= 0 && len(at) < 2; i-- {
			if buf[i] == '\n' {
				at = append(at, i)
			}
		}
		return at
	}
	for end := size; ; {
		n := min(int64(chunk), end)
		part := make([]byte, n)
		if _, err := f.ReadAt(part, end-n); err != nil {
			return nil, false, err
		}
		end -= n
		buf = append(part, buf...)
		at := newlines()
		torn := buf[len(buf)-1] != '\n'
		switch {
		case len(at) == 2:
			return buf[at[1]+1 : at[0]], torn, nil
		case end == 0 && len(at) == 1:
			return buf[:at[0]], torn, nil
		case end == 0:
			return nil, torn, nil
		}
	}
}
