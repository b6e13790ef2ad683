package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
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

// refUnstuff is the byte-at-a-time reference for the DATA reader: lines
// end in CRLF, a line "." ends the data, another leading "." is removed.
// ok is false when the input ends before the end-of-data line.
func refUnstuff(in []byte) (out, rest []byte, ok bool) {
	bol, prevCR := true, false
	out = []byte{}
	for i := 0; i < len(in); {
		if bol && in[i] == '.' {
			if len(in)-i < 3 {
				return out, nil, false
			}
			if in[i+1] == '\r' && in[i+2] == '\n' {
				return out, in[i+3:], true
			}
			i++
			bol = false
			continue
		}
		c := in[i]
		out = append(out, c)
		bol = c == '\n' && prevCR
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
		{"dot after bare LF is no terminator", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", ""},
		{"dot after bare LF is not unstuffed", "a\n..b\r\n.\r\n", "a\n..b\r\n", ""},
		{"bare CR is data", "a\r.\r\n\r\n.\r\n", "a\r.\r\n\r\n", ""},
		{"dot LF is no terminator", "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", ""},
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
	if err := d.drain(); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "RSET\r\n" {
		t.Errorf("rest %q", rest)
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
		if err := d.drain(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: drain %v", in, err)
		}
	}
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
		if ok {
			if err != nil || !bytes.Equal(got, want) || !bytes.Equal(rest, wantRest) {
				t.Fatalf("split reads: %q %v rest %q; want %q rest %q", got, err, rest, want, wantRest)
			}
			if werr != nil || !bytes.Equal(whole, want) || !bytes.Equal(wrest, wantRest) {
				t.Fatalf("one read: %q %v rest %q; want %q rest %q", whole, werr, wrest, want, wantRest)
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
		next := func(prev int64) (int64, bool, error) {
			acks = append(acks, prev)
			line, err := br.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			verb, arg := splitCommand(line)
			size, last, ok := parseBDAT(arg)
			if verb != "BDAT" || !ok {
				return 0, false, errBDATInterrupted
			}
			return size, last, nil
		}
		b := newBDATReader(br, 5, false, 0, next)
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
	next := func(prev int64) (int64, bool, error) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		_, arg := splitCommand(line)
		size, last, _ := parseBDAT(arg)
		return size, last, nil
	}
	b := newBDATReader(br, 60, false, 100, next)
	msg, err := io.ReadAll(b)
	if !errors.Is(err, errDataTooBig) || len(msg) != 60 {
		t.Fatalf("%d bytes, %v; want 60 and the size error before the second chunk", len(msg), err)
	}
	if err := b.drain(); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NOOP\r\n" {
		t.Errorf("rest %q", rest)
	}
}
