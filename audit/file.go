package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// OpenFile opens an audit file for appending ("-" is stdout), creating it
// with mode 0600. When the file already holds events, the chain continues
// from its last line's seq and hash. A file whose last line is not a whole
// event (a torn write) is refused: move it aside to start a new chain.
func OpenFile(path string) (*JSONLSink, error) {
	if path == "-" {
		return NewJSONLSink(os.Stdout, nil), nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	last, err := lastLine(f)
	if err == nil && last != nil {
		var e Event
		if json.Unmarshal(last, &e) != nil || e.Hash == "" {
			err = errors.New("its last line is not a complete audit event")
		} else {
			s := NewJSONLSink(f, nil)
			s.close = f.Close
			s.seq, s.prev = e.Seq, e.Hash
			return s, nil
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w; move it aside to start a new chain", path, err)
	}
	s := NewJSONLSink(f, nil)
	s.close = f.Close
	return s, nil
}

// lastLine returns the last line of f without its newline, reading backwards
// from the end (audit files grow large), or nil for an empty file. A file
// that does not end in a newline was torn mid-write.
func lastLine(f *os.File) ([]byte, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size == 0 {
		return nil, err
	}
	var tail []byte // the bytes after end, read so far
	end := size
	const chunk = 64 << 10
	for end > 0 {
		n := int64(chunk)
		if n > end {
			n = end
		}
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, end-n); err != nil {
			return nil, err
		}
		end -= n
		tail = append(buf, tail...)
		if tail[len(tail)-1] != '\n' {
			return nil, errors.New("it does not end with a newline (torn write?)")
		}
		// Look for the newline before the last line.
		for i := len(tail) - 2; i >= 0; i-- {
			if tail[i] == '\n' {
				return tail[i+1 : len(tail)-1], nil
			}
		}
	}
	return tail[:len(tail)-1], nil
}
