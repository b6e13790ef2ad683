package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeeds are commands of every kind, good and bad.
var fuzzSeeds = []string{
	"a1 CAPABILITY\r\n",
	"a LOGIN {11}\r\nFRED FOOBAR {7+}\r\nfat man\r\nb NOOP\r\n",
	"a UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (Subject From)]<0.100>) (CHANGEDSINCE 5 VANISHED)\r\n",
	"a FETCH 2:4 FULL\r\n",
	"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen $x)\r\n",
	"a UID SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 OR SEEN (TEXT {3}\r\nabc UID 1:5) NOT 2,$\r\n",
	"a SORT RETURN (COUNT) (REVERSE DATE) UTF-8 ALL\r\n",
	"B01 UID SEARCH RETURN (UPDATE CONTEXT COUNT PARTIAL 1:10) DELETED KEYWORD $Junk\r\nB02 CANCELUPDATE \"B01\" \"x\\\"y\"\r\n",
	"C01 UID SORT RETURN (UPDATE) (REVERSE DATE) UTF-8 UNDELETED\r\nC02 CANCELUPDATE {3+}\r\nC01\r\n",
	"a SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500 15000,22500)))\r\n",
	"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
	"a APPEND saved (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {10}\r\n0123456789 {3+}\r\nabc\r\nb NOOP\r\n",
	"a APPEND Drafts CATENATE (URL \"/Drafts;UID=20\" TEXT {3}\r\nabc UTF8 (~{2+}\r\nxy))\r\n",
	"a APPEND x UTF8 (~{3}\r\nabc)\r\n",
	"a UID REPLACE 3002 Drafts {3}\r\nabc\r\n",
	"a NOTIFY SET STATUS (selected (MessageNew (uid) MessageExpunge)) (subtree Lists (MailboxName))\r\n",
	"a SETMETADATA INBOX (/private/comment \"x\" /shared/y ~{3+}\r\na\x00b)\r\n",
	"a GETMETADATA (MAXSIZE 10 DEPTH infinity) INBOX (/a /b)\r\n",
	"a ID (\"name\" \"x\" \"version\" NIL)\r\n",
	"a AUTHENTICATE PLAIN\r\nAGZvbwBiYXI=\r\n",
	"a IDLE\r\nDONE\r\n",
	"a LOGIN {10000000000}\r\nb NOOP\r\n",
	"a LOGIN {10000000000+}\r\nxxxx\r\n",
	"a LOGIN " + strings.Repeat("x", 300) + " {5+}\r\n12345\r\nb NOOP\r\n",
	"a SEARCH " + strings.Repeat("NOT ", 70) + "ALL\r\n",
	"*\r\n\r\na\r\n+ FOO {2+}\r\nab\r\n",
	"a CREATE x (USE (\\Sent))\r\na SETQUOTA \"\" (STORAGE 5)\r\n",
	"a GENURLAUTH \"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred\" INTERNAL {3}\r\nx;y internal\r\n",
	"a URLFETCH (\"imap://a@b/INBOX/;uid=1;urlauth=authuser:internal:00\" BINARY BODYPARTSTRUCTURE) {1+}\r\nx\r\nb RESETKEY INBOX INTERNAL\r\n",
}

// annRe matches a literal announcement at the end of a line.
var annRe = regexp.MustCompile(`~?\{([0-9]+)(\+?)\}$`)

// boundaries returns the offsets at which commands start, as the client
// frames them: a line ends the command unless it ends with a literal
// announcement; the data of a non-synchronizing literal, and of a
// synchronizing one the server asked for (a continuation at that offset),
// belong to the command; a synchronizing literal the server did not ask
// for is not sent.
func boundaries(data []byte, conts map[int64]bool) map[int64]bool {
	out := map[int64]bool{0: true}
	p := int64(0)
	for p < int64(len(data)) {
		i := bytes.IndexByte(data[p:], '\n')
		if i < 0 {
			break
		}
		line := data[p : p+int64(i)]
		line = bytes.TrimSuffix(line, []byte("\r"))
		p += int64(i) + 1
		m := annRe.FindSubmatch(line)
		if m == nil {
			out[p] = true
			continue
		}
		n, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			break // too big to skip: the reader gives up
		}
		if len(m[2]) == 0 && !conts[p] {
			out[p] = true
			continue
		}
		p += n
	}
	return out
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := Options{MaxLine: 200, MaxLiteral: 100, MaxCommand: 400, MaxAppend: 300, MaxDiscard: 500, LiteralMinus: len(data)%2 == 0}
		src := bytes.NewReader(data)
		br := bufio.NewReaderSize(src, 16)
		pos := func() int64 { return int64(len(data)) - int64(src.Len()) - int64(br.Buffered()) }
		conts := map[int64]bool{}
		r := NewReader(br, func() error { conts[pos()] = true; return nil }, opt)
		var ends []int64
		abort := len(data)%3 == 0
		for iter := 0; iter < 10000; iter++ {
			cmd, err := r.ReadCommand()
			if stop := checkErr(t, err); stop {
				break
			}
			if err == nil {
				if stop := drive(t, r, cmd, abort); stop {
					break
				}
			}
			if cap(r.line) > 2*(opt.MaxLine+2)+64 || int64(cap(r.scratch)) > opt.MaxLiteral {
				t.Fatalf("buffers grew beyond the limits: line %d, literal %d", cap(r.line), cap(r.scratch))
			}
			if r.state != stBoundary {
				t.Fatalf("reader not at a command boundary after %v, %v", cmd, err)
			}
			ends = append(ends, pos())
		}
		b := boundaries(data, conts)
		for _, e := range ends {
			if !b[e] {
				t.Fatalf("command ended at %d, not a command boundary (%v); continuations %v", e, ends, conts)
			}
		}
	})
}

// checkErr validates an error and reports whether reading must stop.
func checkErr(t *testing.T, err error) bool {
	if err == nil {
		return false
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("unexpected error %v", err)
		}
		return true
	}
	if pe.Reason == "" || strings.ContainsAny(pe.Reason, "\r\n") || strings.ContainsAny(pe.Tag, " \r\n") {
		t.Fatalf("bad ParseError %+v", pe)
	}
	if pe.Status != BAD && pe.Status != NO {
		t.Fatalf("status %q", pe.Status)
	}
	return pe.Fatal
}

// drive does what a server does with commands that continue after
// ReadCommand. It reports whether reading must stop.
func drive(t *testing.T, r *Reader, cmd Command, abort bool) bool {
	switch c := cmd.(type) {
	case *Idle:
		return checkErr(t, r.ReadDone())
	case *Authenticate:
		_, err := r.ReadSASLResponse()
		if err == ErrSASLCancelled {
			return false
		}
		return checkErr(t, err)
	case *Append:
		return driveAppend(t, &c.stream, abort)
	case *Replace:
		return driveAppend(t, &c.stream, abort)
	}
	return false
}

func driveAppend(t *testing.T, s *stream, abort bool) bool {
	for k := 0; k < 1000; k++ {
		m, err := s.Next()
		if err != nil {
			return checkErr(t, err)
		}
		if m == nil {
			return false
		}
		if abort && k == 0 {
			return checkErr(t, s.Abort())
		}
		if m.Literal != nil {
			rd, err := m.Literal.Open()
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			n, err := io.Copy(io.Discard, rd)
			if err != nil {
				return checkErr(t, err)
			}
			if n != m.Literal.Size {
				t.Fatalf("literal of %d bytes read as %d", m.Literal.Size, n)
			}
			continue
		}
		for j := 0; j < 1000; j++ {
			p, err := m.NextPart()
			if err != nil {
				return checkErr(t, err)
			}
			if p == nil {
				break
			}
			if p.Text != nil {
				rd, _ := p.Text.Open()
				if _, err := io.Copy(io.Discard, rd); err != nil {
					return checkErr(t, err)
				}
			}
		}
	}
	return false
}
