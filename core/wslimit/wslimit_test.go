package wslimit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
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
