package imapserver

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// feedSource is a byteSource over bytes fed so far; reading past them is
// a test failure (the inflater would block although it could answer).
type feedSource struct {
	data []byte
	eof  bool // at the end, report io.EOF instead of blocking
}

var errWouldBlock = errors.New("inflater read beyond the input that has arrived")

func (s *feedSource) ReadByte() (byte, error) {
	if len(s.data) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		return 0, errWouldBlock
	}
	c := s.data[0]
	s.data = s.data[1:]
	return c, nil
}

func (s *feedSource) Buffered() int { return len(s.data) }

// readExactly reads n bytes from the inflater; every Read must return
// data without reading beyond the input fed.
func readExactly(t *testing.T, f *inflater, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 7) // small, to cross token boundaries
	for len(out) < n {
		k, err := f.Read(buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
		if k == 0 {
			t.Fatalf("after %d of %d bytes: empty read", len(out), n)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

// TestInflatePartialFlush: a client that ends each command with
// Z_PARTIAL_FLUSH (mbsync does; the stream was made with zlib) gets each
// command decoded from the bytes sent so far. compress/flate's reader
// would wait for more.
func TestInflatePartialFlush(t *testing.T) {
	stream, err := os.ReadFile("testdata/partial-flush.deflate")
	if err != nil {
		t.Fatal(err)
	}
	chunks := []string{"1 NOOP\r\n", "2 SELECT INBOX\r\n", strings.Repeat("3 UID FETCH 1:* (FLAGS)\r\n", 3), "4 NOOP\r\n"}
	sizes := []int{10, 19, 27, 6} // compressed bytes of each (testdata was made so)
	src := &feedSource{}
	f := newInflater(src)
	off := 0
	for i, want := range chunks {
		src.data = append(src.data, stream[off:off+sizes[i]]...)
		off += sizes[i]
		if got := readExactly(t, f, len(want)); string(got) != want {
			t.Fatalf("chunk %d: %q, want %q", i, got, want)
		}
	}
}

// TestInflateSyncFlush: compress/flate's writer at every level, flushed
// after each message (Z_SYNC_FLUSH), decoded message by message; long and
// repetitive data crosses the window and uses long back-references and
// stored blocks.
func TestInflateSyncFlush(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs []string
	for i := range 60 {
		var b strings.Builder
		switch i % 4 {
		case 0:
			b.WriteString("a" + strings.Repeat(" FETCH 1:* (FLAGS UID)\r\n", rng.IntN(50)+1))
		case 1:
			raw := make([]byte, rng.IntN(70000)+1) // incompressible: stored blocks
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			b.Write(raw)
		case 2:
			b.WriteString(strings.Repeat("All work and no play makes Jack a dull boy. ", rng.IntN(3000)+1))
		default:
			b.WriteString("x NOOP\r\n")
		}
		msgs = append(msgs, b.String())
	}
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
		var stream bytes.Buffer
		var ends []int
		w, _ := flate.NewWriter(&stream, level)
		for _, m := range msgs {
			w.Write([]byte(m))
			w.Flush()
			ends = append(ends, stream.Len())
		}
		src := &feedSource{}
		f := newInflater(src)
		start := 0
		for i, m := range msgs {
			src.data = append(src.data, stream.Bytes()[start:ends[i]]...)
			start = ends[i]
			if got := readExactly(t, f, len(m)); !bytes.Equal(got, []byte(m)) {
				t.Fatalf("level %d, message %d (%d bytes): wrong output", level, i, len(m))
			}
		}
	}
}

// TestInflateCorrupt: bad input is an error, not a hang or a panic.
func TestInflateCorrupt(t *testing.T) {
	for _, in := range [][]byte{
		{0x07},                               // reserved block type
		{0x00, 0x05, 0x00, 0x00},             // stored, NLEN does not match
		{0x04, 0xff, 0xff, 0xff, 0xff, 0xff}, // dynamic with bad tables
		{0x03, 0x02, 0x00, 0x00},             // fixed, a back-reference before any data
	} {
		f := newInflater(&feedSource{data: in, eof: true})
		if _, err := io.ReadAll(f); err == nil {
			t.Errorf("%x: no error", in)
		}
	}
}

// FuzzInflate compares the inflater with compress/flate: where that
// decodes a whole stream, the inflater gives the same bytes; on any input
// it ends (error or EOF) without panicking.
func FuzzInflate(f *testing.F) {
	for _, level := range []int{0, 1, 6, 9, -2} {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, level)
		w.Write([]byte("a1 LOGIN alice secret\r\na2 SELECT INBOX\r\na2 SELECT INBOX\r\n"))
		w.Flush()
		w.Write([]byte(strings.Repeat("zzz", 100)))
		w.Close()
		f.Add(b.Bytes())
	}
	if stream, err := os.ReadFile("testdata/partial-flush.deflate"); err == nil {
		f.Add(stream)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
		got, gerr := io.ReadAll(newInflater(&feedSource{data: bytes.Clone(data), eof: true}))
		if werr == nil {
			if gerr != nil {
				t.Fatalf("compress/flate decodes it, the inflater fails: %v", gerr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs: %d bytes, want %d", len(got), len(want))
			}
		}
	})
}
