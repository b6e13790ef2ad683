package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/message"
)

// splitReader returns its data in reads of the sizes given in turn
// (cycling; 0 counts as 1), to put buffer boundaries anywhere.
type splitReader struct {
	data  []byte
	sizes []int
	i     int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(s.sizes) > 0 {
		n = max(s.sizes[s.i%len(s.sizes)], 1)
		s.i++
	}
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// readData runs a dataReader over in, delivered in reads of the given
// sizes through a bufio.Reader of bufSize, read by the consumer in reads
// of readSize bytes. It returns the message, the error that ended it
// (nil at the end-of-data line) and what is left for the next command.
func readData(in []byte, sizes []int, bufSize, readSize int, limit int64) (msg []byte, err error, rest []byte) {
	br := bufio.NewReaderSize(&splitReader{data: in, sizes: sizes}, bufSize)
	d := newDataReader(br, limit)
	p := make([]byte, readSize)
	for {
		n, rerr := d.Read(p)
		msg = append(msg, p[:n]...)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	rest, _ = io.ReadAll(br)
	return msg, err, rest
}

// refUnstuff is the byte-at-a-time reference for the DATA reader: a line
// ends at LF; a line "." CRLF after a line that ended in CRLF (or first)
// ends the data; another leading "." is removed. ok is false when the
// input ends before the end-of-data line.
func refUnstuff(in []byte) (out, rest []byte, ok bool) {
	bol, afterCRLF, prevCR := true, true, false
	out = []byte{}
	for i := 0; i < len(in); {
		if bol && in[i] == '.' {
			if afterCRLF {
				if len(in)-i < 3 {
					return out, nil, false
				}
				if in[i+1] == '\r' && in[i+2] == '\n' {
					return out, in[i+3:], true
				}
			}
			i++
			bol, prevCR = false, false
			continue
		}
		c := in[i]
		out = append(out, c)
		bol = c == '\n'
		if bol {
			afterCRLF = prevCR
		}
		prevCR = c == '\r'
		i++
	}
	return out, nil, false
}

// stuff dot-stuffs content as a client does (RFC 5321 §4.5.2).
func stuff(content string) string {
	if strings.HasPrefix(content, ".") {
		content = "." + content
	}
	return strings.ReplaceAll(content, "\r\n.", "\r\n..")
}

func TestDataReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		rest string
	}{
		{"empty message", ".\r\n", "", ""},
		{"one line", "hello\r\n.\r\n", "hello\r\n", ""},
		{"no final CRLF in the content", "Subject: x\r\n\r\nlast\r\n.\r\nQUIT\r\n", "Subject: x\r\n\r\nlast\r\n", "QUIT\r\n"},
		{"dot-stuffed line", "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", ""},
		{"a line of two dots is one dot", "a\r\n..\r\n.\r\n", "a\r\n.\r\n", ""},
		{"first line stuffed", "..x\r\n.\r\n", ".x\r\n", ""},
		{"dot inside a line stays", "a.b\r\n. \r\n.\r\n", "a.b\r\n \r\n", ""},
		{"bare LF is data", "a\nb\r\n.\r\n", "a\nb\r\n", ""},
		{"dot after bare LF is no terminator", "a\n.\r\nb\r\n.\r\n", "a\n\r\nb\r\n", ""},
		{"dot after bare LF is unstuffed", "a\n..b\r\n.\r\n", "a\n.b\r\n", ""},
		{"LF-only lines, all stuffed", "..one\n..two\n...\n..\n\r\n.\r\n", ".one\n.two\n..\n.\n\r\n", ""},
		{"two dots between bare LFs", "a\n..\nb\r\n.\r\n", "a\n.\nb\r\n", ""},
		{"terminator after an unstuffed bare-LF line", "a\n..\r\n.\r\n", "a\n.\r\n", ""},
		{"bare LF dot LF", "a\n.\n.\r\n.\r\n", "a\n\n\r\n", ""},
		{"bare CR is data", "a\r.\r\n\r\n.\r\n", "a\r.\r\n\r\n", ""},
		{"dot after bare CR is kept", "a\r..b\r\n.\r\n", "a\r..b\r\n", ""},
		{"dot LF is no terminator", "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", ""},
		{"dot CR is no terminator", "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", ""},
		{"pipelined command after the data", "x\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\n", "x\r\n", "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"},
		{"long line", strings.Repeat("y", 70000) + "\r\n.\r\n", strings.Repeat("y", 70000) + "\r\n", ""},
		{"binary bytes", "\x00\xff\r\n\x80.\r\n.\r\n", "\x00\xff\r\n\x80.\r\n", ""},
	}
	splits := [][]int{nil, {1}, {2}, {3}, {7}, {1, 2, 3}, {4096}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOut, wantRest, ok := refUnstuff([]byte(tt.in))
			if !ok || string(wantOut) != tt.want || string(wantRest) != tt.rest {
				t.Fatalf("reference: %q %q %v; the table says %q %q", wantOut, wantRest, ok, tt.want, tt.rest)
			}
			for _, sz := range splits {
				for _, readSize := range []int{1, 5, 4096} {
					msg, err, rest := readData([]byte(tt.in), sz, 16, readSize, 0)
					if err != nil || string(msg) != tt.want || string(rest) != tt.rest {
						t.Errorf("splits %v, reads of %d: got %q, %v, rest %q; want %q, rest %q", sz, readSize, msg, err, rest, tt.want, tt.rest)
					}
				}
			}
		})
	}
}

// TestDataReaderTerminatorSplit puts the read boundary at every place in
// and around the end-of-data line.
func TestDataReaderTerminatorSplit(t *testing.T) {
	in := "Subject: s\r\n\r\nbody\r\n.\r\nNOOP\r\n"
	for cut := 1; cut < len(in); cut++ {
		msg, err, rest := readData([]byte(in), []int{cut, len(in)}, 16, 64, 0)
		if err != nil || string(msg) != "Subject: s\r\n\r\nbody\r\n" || string(rest) != "NOOP\r\n" {
			t.Errorf("cut at %d: %q %v rest %q", cut, msg, err, rest)
		}
	}
}

func TestDataReaderLimit(t *testing.T) {
	const limit = 100
	line := strings.Repeat("z", 48) + "\r\n" // 50 bytes
	tests := []struct {
		name    string
		content string
		tooBig  bool
	}{
		{"exactly the limit", line + line, false},
		{"exactly the limit with stuffed dots", "." + line[1:] + "." + line[1:], false},
		{"one byte over", line + line + "x\r\n", true},
		{"over on one long line", strings.Repeat("w", 101) + "\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err, _ := readData([]byte(stuff(tt.content)+".\r\nNOOP\r\n"), []int{7}, 16, 33, limit)
			if tt.tooBig {
				if !errors.Is(err, errDataTooBig) || !isTooLarge(err) {
					t.Fatalf("err %v, want the size error", err)
				}
				if len(msg) > limit {
					t.Errorf("%d bytes passed on, more than the limit", len(msg))
				}
				return
			}
			if err != nil || len(msg) != limit {
				t.Fatalf("got %d bytes, %v; want %d", len(msg), err, limit)
			}
		})
	}
}

// TestDataReaderDrain: after a refused message the rest of the data is
// consumed and the next command is where it should be.
func TestDataReaderDrain(t *testing.T) {
	in := strings.Repeat("a line of data\r\n", 1000) + "..x\r\n.\r\nRSET\r\n"
	br := bufio.NewReaderSize(&splitReader{data: []byte(in), sizes: []int{100, 3, 17}}, 64)
	d := newDataReader(br, 50)
	if _, err := io.ReadAll(d); !errors.Is(err, errDataTooBig) {
		t.Fatalf("ReadAll: %v", err)
	}
	if err := d.drain(0); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "RSET\r\n" {
		t.Errorf("rest %q", rest)
	}
}

// TestDataReaderDrainLimit: after a refused message the server reads at
// most its discard limit more; data that goes on beyond it is not read
// to its end (a client could stream for hours), and drain says so. Data
// that ends within the limit is drained as before.
func TestDataReaderDrainLimit(t *testing.T) {
	in := strings.Repeat("a line of data\r\n", 1000) + ".\r\nRSET\r\n" // 16,000 bytes of data
	for _, tc := range []struct {
		limit int64
		want  error
	}{{20000, nil}, {0, nil}, {1000, errDiscardLimit}} {
		br := bufio.NewReaderSize(&splitReader{data: []byte(in), sizes: []int{100, 3, 17}}, 64)
		d := newDataReader(br, 50)
		if _, err := io.ReadAll(d); !errors.Is(err, errDataTooBig) {
			t.Fatalf("ReadAll: %v", err)
		}
		if err := d.drain(tc.limit); !errors.Is(err, tc.want) {
			t.Errorf("limit %d: drain %v, want %v", tc.limit, err, tc.want)
		}
	}
}

func TestDataReaderUnexpectedEOF(t *testing.T) {
	for _, in := range []string{"", "abc", "abc\r\n", "abc\r\n.", "abc\r\n.\r", "abc\r\n..x"} {
		msg, err, _ := readData([]byte(in), []int{2}, 16, 10, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err %v, want unexpected EOF", in, err)
		}
		if !strings.HasPrefix(strings.ReplaceAll(in, "\r\n..", "\r\n."), string(msg)) {
			t.Errorf("%q: returned %q", in, msg)
		}
		br := bufio.NewReaderSize(&splitReader{data: []byte(in)}, 16)
		d := newDataReader(br, 0)
		if err := d.drain(0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: drain %v", in, err)
		}
	}
}

// refStored is the line-by-line reference for what the store keeps of
// DATA input (the DATA reader, then message.NewCRLFReader): the input is
// cut into lines at LF; the first line "." CRLF that is the first line or
// follows a line ending in CRLF ends the data; every other line loses one
// leading period; then every bare CR and bare LF becomes CRLF. ok is false
// when the input ends before the end-of-data line.
func refStored(in []byte) (stored []byte, ok bool) {
	var out []byte
	afterCRLF := true
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			break
		}
		line := in[:i+1]
		in = in[i+1:]
		if afterCRLF && string(line) == ".\r\n" {
			return refCRLF(out), true
		}
		afterCRLF = bytes.HasSuffix(line, []byte("\r\n"))
		out = append(out, bytes.TrimPrefix(line, []byte("."))...)
	}
	return nil, false
}

// refCRLF makes every line ending CRLF: a bare CR and a bare LF each end
// a line.
func refCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// storeData runs in through the DATA reader and the store's CRLF
// normalisation, delivered in reads of the given sizes.
func storeData(in []byte, sizes []int) ([]byte, error) {
	br := bufio.NewReaderSize(&splitReader{data: in, sizes: sizes}, 16)
	return io.ReadAll(message.NewCRLFReader(newDataReader(br, 0)))
}

// TestDataStored: what the store keeps of DATA input, with the data
// delivered one byte at a time and in other splits.
func TestDataStored(t *testing.T) {
	tests := []struct{ in, want string }{
		{"..one\n..two\n\r\n.\r\n", ".one\r\n.two\r\n\r\n"},
		{"..\n..\n...\n\r\n.\r\n", ".\r\n.\r\n..\r\n\r\n"},
		{"a\r.b\r..c\r\n.\r\n", "a\r\n.b\r\n..c\r\n"},
		{"a\n.\r\nb\r\n.\nc\r\n.\r\n", "a\r\n\r\nb\r\n\r\nc\r\n"},
		{"x\r\r\n.\r\n", "x\r\n\r\n"},
		{".\r\n", ""},
	}
	for _, tt := range tests {
		want, ok := refStored([]byte(tt.in))
		if !ok || string(want) != tt.want {
			t.Fatalf("reference for %q: %q %v; the table says %q", tt.in, want, ok, tt.want)
		}
		for _, sz := range [][]int{{1}, {2}, {3, 1}, {4096}} {
			got, err := storeData([]byte(tt.in), sz)
			if err != nil || string(got) != tt.want {
				t.Errorf("%q in reads of %v: stored %q, %v; want %q", tt.in, sz, got, err, tt.want)
			}
		}
	}
}

// pyStuff dot-stuffs and terminates msg as Python's smtplib does for a
// message given as bytes (smtplib.SMTP.data): a period at the start of
// the message or after any LF is doubled, CRLF is added unless msg ends
// in CRLF, then "." CRLF.
func pyStuff(msg []byte) []byte {
	var out []byte
	for i, c := range msg {
		if c == '.' && (i == 0 || msg[i-1] == '\n') {
			out = append(out, '.')
		}
		out = append(out, c)
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, "\r\n"...)
	}
	return append(out, ".\r\n"...)
}

// goStuff dot-stuffs and terminates msg as Go's net/smtp does, through
// textproto.DotWriter.
func goStuff(msg []byte) []byte {
	var b bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&b)).DotWriter()
	_, _ = w.Write(msg)
	_ = w.Close()
	return b.Bytes()
}

// goContent is the message textproto.DotWriter sends for msg, before its
// dot-stuffing: it follows the writer's states, in which a CR ends a line
// only when LF follows it, an LF not after such a CR gets a CR (so
// "\r\r\n" is sent as "\r\r\r\n"), and Close ends an open line.
func goContent(msg []byte) []byte {
	const (
		begin = iota
		data
		cr
	)
	var out []byte
	state := begin
	for _, c := range msg {
		switch {
		case state == cr && c == '\n':
			state = begin
		case c == '\n':
			out = append(out, '\r')
			state = begin
		case state == cr:
			state = data
		case c == '\r':
			state = cr
		default:
			state = data
		}
		out = append(out, c)
	}
	switch {
	case state == cr:
		out = append(out, '\n')
	case state == begin && len(msg) > 0:
	default:
		out = append(out, '\r', '\n')
	}
	return out
}

// FuzzDataStuffing: a message that a client dot-stuffs (Python's smtplib,
// Go's textproto) is stored as `postfach deliver` stores the same message
// (its bytes through message.NewCRLFReader), with the final line ending
// the client adds.
func FuzzDataStuffing(f *testing.F) {
	for _, s := range []string{
		"Subject: x\n\n.one\n..two\n.\n",
		".\r\n.\n.\r.",
		"a\r.b\n\r\n.",
		"\n.\r\n",
	} {
		f.Add([]byte(s), []byte{1})
	}
	f.Fuzz(func(t *testing.T, msg, splits []byte) {
		sizes := make([]int, len(splits))
		for i, s := range splits {
			sizes[i] = int(s)
		}
		deliver := func(m []byte) []byte {
			out, _ := io.ReadAll(message.NewCRLFReader(bytes.NewReader(m)))
			return out
		}
		py, err := storeData(pyStuff(msg), sizes)
		want := msg
		if !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(bytes.Clone(want), "\r\n"...)
		}
		if err != nil || !bytes.Equal(py, deliver(want)) {
			t.Fatalf("smtplib-stuffed %q stored as %q, %v; deliver stores %q", msg, py, err, deliver(want))
		}
		gw := goStuff(msg)
		g, err := storeData(gw, sizes)
		want = goContent(msg)
		if err != nil || !bytes.Equal(g, deliver(want)) {
			t.Fatalf("textproto-stuffed %q (%q) stored as %q, %v; deliver stores %q", msg, gw, g, err, deliver(want))
		}
	})
}

func FuzzDataReader(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"), []byte{1, 2, 3}, uint8(5))
	f.Add([]byte("..\r\n.x\r\n\n.\r\n\r\n.\r\n"), []byte{3}, uint8(1))
	f.Add([]byte("a\r\n.\r"), []byte{0}, uint8(200))
	f.Add([]byte(".\r\n"), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, in, splits []byte, readSize uint8) {
		sizes := make([]int, len(splits))
		for i, s := range splits {
			sizes[i] = int(s)
		}
		want, wantRest, ok := refUnstuff(in)
		got, err, rest := readData(in, sizes, 16, int(readSize)+1, 0)
		whole, werr, wrest := readData(in, nil, 1<<16, 1<<16, 0)
		stored, serr := storeData(in, []int{1})
		refS, refOK := refStored(in)
		if refOK != ok {
			t.Fatalf("the references disagree on the end of the data: %v, %v", refOK, ok)
		}
		if ok {
			if err != nil || !bytes.Equal(got, want) || !bytes.Equal(rest, wantRest) {
				t.Fatalf("split reads: %q %v rest %q; want %q rest %q", got, err, rest, want, wantRest)
			}
			if werr != nil || !bytes.Equal(whole, want) || !bytes.Equal(wrest, wantRest) {
				t.Fatalf("one read: %q %v rest %q; want %q rest %q", whole, werr, wrest, want, wantRest)
			}
			if serr != nil || !bytes.Equal(stored, refS) {
				t.Fatalf("stored %q, %v; the line reference stores %q", stored, serr, refS)
			}
			return
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(werr, io.ErrUnexpectedEOF) {
			t.Fatalf("unterminated data: errors %v and %v", err, werr)
		}
		if !bytes.HasPrefix(want, got) || !bytes.HasPrefix(want, whole) {
			t.Fatalf("unterminated data: %q and %q are not prefixes of %q", got, whole, want)
		}
	})
}

func TestBDATReader(t *testing.T) {
	// Three chunks: "BDAT 5" (this one), then "BDAT 3", then "BDAT 2 LAST".
	in := "hello" + "BDAT 3\r\n" + ".\r\n" + "BDAT 2 LAST\r\n" + "!!" + "QUIT\r\n"
	for _, sz := range [][]int{nil, {1}, {4}, {100}} {
		br := bufio.NewReaderSize(&splitReader{data: []byte(in), sizes: sz}, 16)
		var acks []int64
		next := func(prev chunk) (chunk, error) {
			acks = append(acks, prev.size)
			line, err := br.ReadSlice('\n')
			if err != nil {
				return chunk{}, err
			}
			verb, arg := splitCommand(line)
			size, last, ok := parseBDAT(arg)
			if verb != "BDAT" || !ok {
				return chunk{}, errBDATInterrupted
			}
			return chunk{size: size, last: last}, nil
		}
		b := newBDATReader(br, chunk{size: 5}, 0, next)
		msg, err := io.ReadAll(b)
		if err != nil || string(msg) != "hello.\r\n!!" {
			t.Errorf("splits %v: %q %v", sz, msg, err)
		}
		if len(acks) != 2 || acks[0] != 5 || acks[1] != 3 {
			t.Errorf("splits %v: chunks acknowledged %v", sz, acks)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "QUIT\r\n" {
			t.Errorf("splits %v: rest %q", sz, rest)
		}
	}
}

func TestBDATReaderLimit(t *testing.T) {
	in := strings.Repeat("x", 60) + "BDAT 50 LAST\r\n" + strings.Repeat("y", 50) + "NOOP\r\n"
	br := bufio.NewReaderSize(&splitReader{data: []byte(in), sizes: []int{7}}, 16)
	next := func(prev chunk) (chunk, error) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return chunk{}, err
		}
		_, arg := splitCommand(line)
		size, last, _ := parseBDAT(arg)
		return chunk{size: size, last: last}, nil
	}
	b := newBDATReader(br, chunk{size: 60}, 100, next)
	msg, err := io.ReadAll(b)
	if !errors.Is(err, errDataTooBig) || len(msg) != 60 {
		t.Fatalf("%d bytes, %v; want 60 and the size error before the second chunk", len(msg), err)
	}
	if err := b.drain(0); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NOOP\r\n" {
		t.Errorf("rest %q", rest)
	}
}
