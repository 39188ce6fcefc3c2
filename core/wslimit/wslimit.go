// Package wslimit bounds what a websocket client may make the server read.
//
// gorilla/websocket reads a whole frame, and a whole message across
// continuation frames, unless Conn.SetReadLimit is called; gqlgen's
// websocket transport upgrades the connection itself and never calls it,
// so a client could make the daemon buffer any amount before it even
// authenticates. Middleware sits in front of such a transport: it hands
// the upgrader a net.Conn that parses the client's frame headers as they
// arrive and stops a frame, or a message made of several frames, whose
// announced payload goes over the limit before a byte of that payload is
// read. The server then answers with close code 1009 (message too big)
// and the connection ends.
//
// The limit starts low (Limits.Init) until the application calls
// Authenticated with the request's context, typically once
// connection_init has been accepted, and is Limits.Message afterwards.
//
// The same connection lets the application choose the code of the close
// frame the server sends (CloseWith): gqlgen's transport closes every
// refused or cancelled connection with 1000 "terminated", which
// graphql-ws clients take for a normal end and reconnect at once, while
// the protocol answers bad credentials with 4401 and 4403, which they do
// not retry (or retry with back-off).
package wslimit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Default limits, in bytes of payload.
const (
	DefaultInit    = 64 << 10
	DefaultMessage = 1 << 20
)

// Limits are payload sizes in bytes; zero means the default.
type Limits struct {
	Init    int64 // one message before Authenticated
	Message int64 // one message (all its frames) afterwards
}

// ErrTooBig is what the guarded connection's reads return once a frame or
// message went over the limit.
var ErrTooBig = errors.New("websocket message too big")

// CloseMessageTooBig is the close code sent when a message is over the
// limit (RFC 6455, 7.4.1).
const CloseMessageTooBig = 1009

type ctxKey struct{}

// ref lets the middleware hand the connection it made at Hijack to code
// that only has the request's context.
type ref struct {
	mu   sync.Mutex
	conn *Conn
	auth bool
}

// Middleware guards websocket upgrade requests; other requests pass
// untouched.
func Middleware(l Limits, next http.Handler) http.Handler {
	if l.Init <= 0 {
		l.Init = DefaultInit
	}
	if l.Message <= 0 {
		l.Message = DefaultMessage
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		rf := &ref{}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rf))
		next.ServeHTTP(&hijackWriter{ResponseWriter: w, limits: l, ref: rf}, r)
	})
}

// CloseWith makes the next close frame the server sends on the connection
// upgraded from the request whose context (or a context derived from it)
// is ctx carry code and reason instead of the code and reason the
// websocket library was given. It is called before the library closes
// the connection (e.g. before returning an error from gqlgen's InitFunc
// or cancelling the connection's context). The reason is cut to the 123
// bytes a close frame holds. It does nothing for a context without a
// guarded connection.
func CloseWith(ctx context.Context, code uint16, reason string) {
	rf, ok := ctx.Value(ctxKey{}).(*ref)
	if !ok {
		return
	}
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.conn != nil {
		rf.conn.setClose(code, reason)
	}
}

// maxCloseReason is a close frame's 125 payload bytes less the code.
const maxCloseReason = 123

// Authenticated raises the limit of the connection upgraded from the
// request whose context (or a context derived from it) is ctx to
// Limits.Message. It does nothing for a context without one.
func Authenticated(ctx context.Context) {
	rf, ok := ctx.Value(ctxKey{}).(*ref)
	if !ok {
		return
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	rf.auth = true
	if rf.conn != nil {
		rf.conn.limit.Store(rf.conn.limits.Message)
	}
}

type hijackWriter struct {
	http.ResponseWriter
	limits Limits
	ref    *ref
}

// Hijack returns the guarded connection. Bytes the server already
// buffered are read through the guard too. The returned ReadWriter's
// reader reads from the guard, so an upgrader that reuses it (gorilla does
// when its ReadBufferSize is 0) cannot bypass it.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rc := http.NewResponseController(h.ResponseWriter)
	nc, brw, err := rc.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack for websocket: %w", err)
	}
	var src io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(strings.NewReader(string(early)), nc)
	}
	c := newConn(nc, src, h.limits)
	h.ref.mu.Lock()
	h.ref.conn = c
	if h.ref.auth {
		c.limit.Store(h.limits.Message)
	}
	h.ref.mu.Unlock()
	return c, bufio.NewReadWriter(bufio.NewReader(c), brw.Writer), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Conn is a server-side websocket connection whose client frames are
// checked against a size limit before their payload is read.
type Conn struct {
	net.Conn
	src    *bufio.Reader
	limits Limits
	limit  atomic.Int64
	read   atomic.Int64 // bytes taken from the network, for tests and metrics

	// Frame parser state; Read is not safe for concurrent use, like any
	// reader a websocket library drives from one goroutine.
	left    uint64 // payload bytes of the current frame still to pass on
	msg     uint64 // payload of the current data message so far
	pending []byte // header bytes, or the synthesised close frame, to hand out
	tripped bool   // over the limit: no more network reads

	// The close frame CloseWith asked for (code 0: none), and the write
	// side's frame tracking: Write is called under the library's write
	// lock, one call per frame header with its payload (gorilla writes
	// a control frame in one call), so a close frame is recognised only
	// at a frame boundary, never inside a data frame's payload.
	closeMu     sync.Mutex
	closeCode   uint16
	closeReason string
	wframes     bool   // the HTTP 101 response is written: frames follow
	wleft       uint64 // payload bytes of the frame being written still to come
	wlost       bool   // a header split across writes: stop rewriting
}

func newConn(nc net.Conn, src io.Reader, l Limits) *Conn {
	c := &Conn{Conn: nc, limits: l}
	c.src = bufio.NewReaderSize(countingReader{src, &c.read}, 4096)
	c.limit.Store(l.Init)
	return c
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// BytesRead is how many bytes were taken from the network so far.
func (c *Conn) BytesRead() int64 { return c.read.Load() }

// Read passes frames through unchanged until one goes over the limit.
// Then, instead of that frame, it returns a masked close frame with code
// 1009 as if the client had sent it: the websocket library answers it
// with its own close 1009 under its write lock (writing from here could
// interleave with a frame it is writing) and reports the close to the
// application, which ends the connection. Later reads fail.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.tripped {
		return 0, ErrTooBig
	}
	if c.left > 0 {
		if uint64(len(p)) > c.left {
			p = p[:c.left]
		}
		n, err := c.src.Read(p)
		c.left -= uint64(n)
		return n, err
	}
	hdr, err := c.header()
	if err != nil {
		return 0, err
	}
	if len(p) == 0 {
		c.pending = hdr
		return 0, nil
	}
	n := copy(p, hdr)
	c.pending = hdr[n:]
	return n, nil
}

// header reads one frame header and decides whether its payload may be
// read.
func (c *Conn) header() ([]byte, error) {
	var b [14]byte
	if _, err := io.ReadFull(c.src, b[:2]); err != nil {
		return nil, err
	}
	n := 2
	size := uint64(b[1] & 0x7f)
	switch size {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 { // masked, as every client frame must be
		n += 4
	}
	if _, err := io.ReadFull(c.src, b[2:n]); err != nil {
		return nil, err
	}
	switch size {
	case 126:
		size = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		size = binary.BigEndian.Uint64(b[2:10])
	}
	opcode := b[0] & 0x0f
	// Control frames (close, ping, pong) may come between the frames of
	// a message and are at most 125 bytes; the library checks that.
	if opcode < 8 {
		if opcode != 0 { // a new message; 0 continues the current one
			c.msg = 0
		}
		limit := uint64(c.limit.Load())
		if size > limit || c.msg+size > limit {
			return c.trip(), nil
		}
		c.msg += size
	}
	c.left = size
	return append([]byte(nil), b[:n]...), nil
}

func (c *Conn) trip() []byte {
	c.tripped = true
	reason := "message too big"
	f := []byte{0x88, 0x80 | byte(2+len(reason)), 0, 0, 0, 0} // FIN+close, masked with a zero key
	f = binary.BigEndian.AppendUint16(f, CloseMessageTooBig)
	return append(f, reason...)
}

func (c *Conn) setClose(code uint16, reason string) {
	c.closeMu.Lock()
	c.closeCode, c.closeReason = code, reason
	c.closeMu.Unlock()
}

// Write passes the server's frames through, except a close frame written
// after CloseWith, whose code and reason are replaced.
func (c *Conn) Write(p []byte) (int, error) {
	c.closeMu.Lock()
	code, reason := c.closeCode, c.closeReason
	c.closeMu.Unlock()
	if code != 0 && c.wframes && !c.wlost && c.wleft == 0 && len(p) >= 2 && p[0]&0x0f == 8 {
		if size, hdr, ok := frameHeader(p); ok && uint64(hdr)+size == uint64(len(p)) {
			f := []byte{p[0], byte(2 + len(reason))} // unmasked: a server frame
			f = binary.BigEndian.AppendUint16(f, code)
			f = append(f, reason...)
			if _, err := c.Conn.Write(f); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	c.track(p)
	return c.Conn.Write(p)
}

// track follows frame boundaries through what the server writes.
func (c *Conn) track(p []byte) {
	if !c.wframes {
		// The upgrader writes its whole 101 response in one call.
		i := bytes.Index(p, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		c.wframes = true
		p = p[i+4:]
	}
	for len(p) > 0 && !c.wlost {
		if c.wleft > 0 {
			n := min(c.wleft, uint64(len(p)))
			c.wleft -= n
			p = p[n:]
			continue
		}
		size, hdr, ok := frameHeader(p)
		if !ok {
			c.wlost = true
			return
		}
		p = p[hdr:]
		c.wleft = size
	}
}

// frameHeader parses the frame header at the start of p: the payload
// size and the header's length; ok is false when p holds only part of it.
func frameHeader(p []byte) (size uint64, n int, ok bool) {
	if len(p) < 2 {
		return 0, 0, false
	}
	n = 2
	size = uint64(p[1] & 0x7f)
	switch size {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if p[1]&0x80 != 0 {
		n += 4
	}
	if len(p) < n {
		return 0, 0, false
	}
	switch size {
	case 126:
		size = uint64(binary.BigEndian.Uint16(p[2:4]))
	case 127:
		size = binary.BigEndian.Uint64(p[2:10])
	}
	return size, n, true
}
