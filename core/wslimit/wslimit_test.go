package wslimit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// source serves a frame header announcing size bytes followed by an
// endless payload, and counts what is taken from it.
type source struct {
	hdr  []byte
	read int64
}

func (s *source) Read(p []byte) (int, error) {
	n := copy(p, s.hdr)
	s.hdr = s.hdr[n:]
	clear(p[n:])
	s.read += int64(len(p))
	return len(p), nil
}

func header(opcode byte, fin bool, size uint64) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	h := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, size)
	return append(h, 0, 0, 0, 0)
}

func TestOversizedFrameStopsAtItsHeader(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	src := &source{hdr: header(1, true, 100<<20)}
	c := newConn(a, src, Limits{Init: 64 << 10, Message: 1 << 20})
	got, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("err = %v, want ErrTooBig", err)
	}
	// What the library sees instead of the frame: a close with 1009.
	want := []byte{0x88, 0x80 | 17, 0, 0, 0, 0, 0x03, 0xf1}
	if !bytes.HasPrefix(got, want) || string(got[len(want):]) != "message too big" {
		t.Fatalf("got % x", got)
	}
	// Only the header and one read-ahead buffer came off the network.
	if src.read > 8<<10 || c.BytesRead() > 8<<10 {
		t.Fatalf("%d bytes read from the network for a refused 100 MB frame", src.read)
	}
}

func TestFramesWithinLimitPassUnchanged(t *testing.T) {
	var in bytes.Buffer
	in.Write(header(1, false, 3))
	in.WriteString("abc")
	in.Write(header(9, true, 2)) // a ping between the frames of a message
	in.WriteString("pi")
	in.Write(header(0, true, 4))
	in.WriteString("defg")
	want := bytes.Clone(in.Bytes())
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(a, &in, Limits{Init: 7, Message: 7})
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got % x, %v; want % x", got, err, want)
	}
}

func TestMessageCountedAcrossContinuations(t *testing.T) {
	var in bytes.Buffer
	in.Write(header(1, false, 4))
	in.WriteString("abcd")
	in.Write(header(0, true, 4))
	in.WriteString("efgh")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(a, &in, Limits{Init: 6, Message: 6})
	got, err := io.ReadAll(c)
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Contains(got, []byte("abcd")) || bytes.Contains(got, []byte("efgh")) {
		t.Fatalf("got % x", got)
	}
}

func TestAuthenticatedRaisesTheLimit(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var in bytes.Buffer
	in.Write(header(1, true, 100))
	in.Write(make([]byte, 100))
	c := newConn(a, &in, Limits{Init: 10, Message: 1000})
	Authenticated(t.Context()) // no connection in this context: nothing happens
	Authenticated(context.WithValue(t.Context(), ctxKey{}, &ref{conn: c}))
	if got, err := io.ReadAll(c); err != nil || len(got) != 14+100 {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}

// capture is a net.Conn that keeps what is written to it.
type capture struct {
	net.Conn
	out bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) { return c.out.Write(p) }

// The close frame written after CloseWith carries its code and reason;
// the handshake and data frames pass unchanged, even a data frame whose
// second write starts with the close opcode's byte.
func TestCloseWithRewritesOnlyTheCloseFrame(t *testing.T) {
	w := &capture{}
	c := newConn(w, &bytes.Buffer{}, Limits{Init: 10, Message: 10})
	ctx := context.WithValue(t.Context(), ctxKey{}, &ref{conn: c})
	CloseWith(t.Context(), 4401, "no connection here: nothing happens")
	hs := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	data := append([]byte{0x81, 6, '{', '"'}, 0x88, 'x', '"', '}')
	close1000 := append([]byte{0x88, 12, 0x03, 0xe8}, "terminated"...)
	writes := [][]byte{[]byte(hs), data[:4], data[4:]}
	var want []byte
	for _, p := range writes {
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
		want = append(want, p...)
	}
	CloseWith(ctx, 4403, strings.Repeat("r", 200))
	if n, err := c.Write(close1000); n != len(close1000) || err != nil {
		t.Fatalf("close: %d %v", n, err)
	}
	want = append(want, 0x88, 125, 0x11, 0x33) // 4403
	want = append(want, strings.Repeat("r", 123)...)
	if !bytes.Equal(w.out.Bytes(), want) {
		t.Fatalf("wrote\n% x\nwant\n% x", w.out.Bytes(), want)
	}
}

// Without CloseWith the library's close frame passes unchanged.
func TestCloseFrameUnchangedWithoutCloseWith(t *testing.T) {
	w := &capture{}
	c := newConn(w, &bytes.Buffer{}, Limits{})
	frames := [][]byte{[]byte("HTTP/1.1 101 OK\r\n\r\n"), append([]byte{0x88, 12, 0x03, 0xe8}, "terminated"...)}
	var want []byte
	for _, p := range frames {
		_, _ = c.Write(p)
		want = append(want, p...)
	}
	if !bytes.Equal(w.out.Bytes(), want) {
		t.Fatalf("wrote % x", w.out.Bytes())
	}
}
