package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// clientWire speaks the protocol with an authenticated client: it reads
// the client's messages and buffers what the proxy sends it. Unlike
// pgproto3.Backend, which keeps an 8 KiB read buffer for its connection's
// whole life, it holds no buffer while the client is idle: a blocking read
// lands in a small array of its own, and a message that does not fit, or
// the output of one round trip, borrows a pooled buffer that goes back as
// soon as it is consumed or written. Ten thousand idle clients then cost
// their goroutines and little else.
//
// As with pgproto3.Backend, a message returned by Receive is valid only
// until the next call: its slices point into the read buffer, and its
// struct is reused.
type clientWire struct {
	r       io.Reader
	w       io.Writer
	maxBody int // a larger body is refused (ExceededMaxBodyLenErr)

	small *[smallRead]byte // from smallPool; nil while parked
	big   *[]byte          // borrowed from bufPool; nil while small serves
	rp    int              // read position in buf()
	wp    int              // write position in buf()

	out       *[]byte // pending output, borrowed from bufPool; nil when flushed
	encodeErr error   // a message Send could not encode, for Flush to report

	// Reused message structs, as pgproto3.Backend does.
	query    pgproto3.Query
	parse    pgproto3.Parse
	bind     pgproto3.Bind
	describe pgproto3.Describe
	execute  pgproto3.Execute
	sync     pgproto3.Sync
}

// smallRead is the size of the read array every client keeps: most
// statements a client sends while idle fit, and arrive in one read.
const smallRead = 512

// pooledSize is the size of the buffers borrowed for large messages and for
// output (Postgres's own send buffer is 8 KiB).
const pooledSize = 8192

var bufPool = sync.Pool{New: func() any { b := make([]byte, pooledSize); return &b }}

var smallPool = sync.Pool{New: func() any { return new([smallRead]byte) }}

func newClientWire(r io.Reader, w io.Writer, maxBody int) *clientWire {
	return &clientWire{r: r, w: w, maxBody: maxBody}
}

// empty reports whether nothing read is waiting to be returned.
func (c *clientWire) empty() bool { return c.rp == c.wp }

func (c *clientWire) buf() []byte {
	if c.big != nil {
		return *c.big
	}
	if c.small == nil {
		c.small = smallPool.Get().(*[smallRead]byte)
	}
	return c.small[:]
}

// park lets go of everything a parked session need not keep: the read
// array and what the reused messages point to. Only when empty.
func (c *clientWire) park() {
	if !c.empty() {
		return
	}
	c.rp, c.wp = 0, 0
	c.release()
	if c.small != nil {
		smallPool.Put(c.small)
		c.small = nil
	}
	c.query, c.parse, c.bind = pgproto3.Query{}, pgproto3.Parse{}, pgproto3.Bind{}
	c.describe, c.execute = pgproto3.Describe{}, pgproto3.Execute{}
}

// Receive reads the next message. A read error (a deadline, say) leaves
// what was read in place: the next call carries on with the same message.
func (c *clientWire) Receive() (pgproto3.FrontendMessage, error) {
	if c.rp == c.wp {
		c.rp, c.wp = 0, 0
		c.release()
	}
	if err := c.fill(5); err != nil {
		return nil, err
	}
	b := c.buf()
	typ := b[c.rp]
	length := int(int32(binary.BigEndian.Uint32(b[c.rp+1:])))
	if length < 4 {
		return nil, fmt.Errorf("invalid message length: %d", length)
	}
	bodyLen := length - 4
	if c.maxBody > 0 && bodyLen > c.maxBody {
		return nil, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: c.maxBody, ActualBodyLen: bodyLen}
	}
	var msg pgproto3.FrontendMessage
	switch typ {
	case 'B':
		msg = &c.bind
	case 'C':
		msg = &pgproto3.Close{}
	case 'D':
		msg = &c.describe
	case 'E':
		msg = &c.execute
	case 'F':
		msg = &pgproto3.FunctionCall{}
	case 'f':
		msg = &pgproto3.CopyFail{}
	case 'd':
		msg = &pgproto3.CopyData{}
	case 'c':
		msg = &pgproto3.CopyDone{}
	case 'H':
		msg = &pgproto3.Flush{}
	case 'P':
		msg = &c.parse
	case 'p':
		msg = &pgproto3.PasswordMessage{}
	case 'Q':
		msg = &c.query
	case 'S':
		msg = &c.sync
	case 'X':
		msg = &pgproto3.Terminate{}
	default:
		return nil, fmt.Errorf("unknown message type: %c", typ)
	}
	if err := c.fill(5 + bodyLen); err != nil {
		return nil, err
	}
	b = c.buf()
	body := b[c.rp+5 : c.rp+5+bodyLen : c.rp+5+bodyLen]
	c.rp += 5 + bodyLen
	if err := msg.Decode(body); err != nil {
		return nil, err
	}
	return msg, nil
}

// fill reads until n bytes from rp are buffered, moving to a pooled (or,
// beyond its size, an exact) buffer when they do not fit where they are.
func (c *clientWire) fill(n int) error {
	for c.wp-c.rp < n {
		b := c.buf()
		if len(b)-c.rp < n {
			var nb *[]byte
			if n <= pooledSize {
				nb = bufPool.Get().(*[]byte)
			} else {
				big := make([]byte, n)
				nb = &big
			}
			c.wp = copy(*nb, b[c.rp:c.wp])
			c.rp = 0
			c.release()
			c.big = nb
			b = *nb
		}
		got, err := c.r.Read(b[c.wp:])
		c.wp += got
		if c.wp-c.rp >= n {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// release gives back a borrowed read buffer once nothing in it is unread
// (then rp == wp == 0), or after its bytes were copied out.
func (c *clientWire) release() {
	if c.big == nil {
		return
	}
	if cap(*c.big) == pooledSize {
		bufPool.Put(c.big)
	}
	c.big = nil
}

// Send buffers a message for the client.
func (c *clientWire) Send(msg pgproto3.BackendMessage) {
	if c.out == nil {
		c.out = bufPool.Get().(*[]byte)
		*c.out = (*c.out)[:0]
	}
	b, err := msg.Encode(*c.out)
	if err != nil { // only a message too large for the protocol
		if c.encodeErr == nil {
			c.encodeErr = fmt.Errorf("encoding %T for the client: %w", msg, err)
		}
		return
	}
	*c.out = b
}

// Flush writes what Send buffered and gives the buffer back.
func (c *clientWire) Flush() error {
	if err := c.encodeErr; err != nil {
		c.encodeErr = nil
		return err
	}
	if c.out == nil {
		return nil
	}
	out := c.out
	c.out = nil
	var err error
	if len(*out) > 0 {
		_, err = c.w.Write(*out)
	}
	if cap(*out) <= 4*pooledSize {
		*out = (*out)[:cap(*out)]
		if cap(*out) == pooledSize {
			bufPool.Put(out)
		}
	}
	return err
}
