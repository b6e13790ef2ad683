package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Mbox files (RFC 4155): messages one after another, each starting with a
// "From " line (the From_ line: envelope sender and date). The variants
// differ in how a body line that begins with "From " is kept apart from
// a From_ line, and cannot be told apart reliably from the file, so the
// reader is told which one it reads:
//
//   - mboxrd: a writer adds one ">" to every line matching ^>*From ; the
//     reader takes one away from each.
//   - mboxo: a writer adds ">" to ^From  only; the reader takes one away
//     from ^>From  (a body line that began with ">From " is changed; the
//     format cannot do better).
//   - mboxcl2: nothing is quoted; a Content-Length header gives the size
//     of the body.
//
// Whatever the variant, a line is taken for a From_ line only when it
// carries a date (as every writer puts there), so a body line "From here
// on..." that a sloppy writer left unquoted stays in its message; and the
// blank line before a From_ line is the separator, not part of the
// message.

// MboxFormat names an mbox variant.
type MboxFormat string

// The mbox variants.
const (
	MboxRD  MboxFormat = "mboxrd"
	MboxO   MboxFormat = "mboxo"
	MboxCL2 MboxFormat = "mboxcl2"
)

// ParseMboxFormat checks a variant's name; "" is mboxrd.
func ParseMboxFormat(s string) (MboxFormat, error) {
	switch f := MboxFormat(strings.ToLower(s)); f {
	case "":
		return MboxRD, nil
	case MboxRD, MboxO, MboxCL2:
		return f, nil
	}
	return "", fmt.Errorf("unknown mbox format %q (want mboxrd, mboxo or mboxcl2)", s)
}

// maxMboxHeader bounds the header section the reader collects for a
// message; a longer one is passed on as body (and its flags are not
// read).
const maxMboxHeader = 1 << 20

// errNotMbox: the file does not begin with a From_ line.
var errNotMbox = errors.New("not an mbox file (it does not begin with a \"From \" line)")

// mboxReader reads the messages of an mbox file one at a time, in
// bounded memory: Next returns a message's header, and its body as a
// reader that ends at the next From_ line.
type mboxReader struct {
	br     *bufio.Reader
	format MboxFormat
	// next is the From_ line that begins the next message (nil before
	// the first and at the end); eof is set once the input has ended.
	next    []byte
	eof     bool
	err     error
	body    *mboxBody
	started bool
	// Problems are notes about damage the reader got past (a wrong
	// Content-Length).
	Problems []string
	n        int // messages returned
}

func newMboxReader(r io.Reader, format MboxFormat) *mboxReader {
	return &mboxReader{br: bufio.NewReaderSize(r, 64<<10), format: format}
}

// mboxMessage is one message of an mbox.
type mboxMessage struct {
	// Sender and Date are from the From_ line (Date zero when it has
	// none that parses).
	Sender string
	Date   time.Time
	// Header is the header section with its ending blank line, as in
	// the file (unquoted); Complete is false when it was too long and
	// Body carries the rest of it.
	Header   []byte
	Complete bool
	// Body reads the rest of the message up to the next From_ line.
	Body io.Reader
}

// Next returns the next message, or io.EOF after the last. The previous
// message's body need not have been read to the end.
func (r *mboxReader) Next() (*mboxMessage, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		line, err := r.br.ReadSlice('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				r.err = io.EOF
				return nil, io.EOF
			}
			r.err = err
			return nil, err
		}
		if !bytes.HasPrefix(line, []byte("From ")) {
			r.err = errNotMbox
			return nil, r.err
		}
		r.next = append([]byte(nil), line...)
		if err == bufio.ErrBufferFull {
			// A From_ line longer than the buffer: keep its start only.
			for err == bufio.ErrBufferFull {
				_, err = r.br.ReadSlice('\n')
			}
		}
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			r.err = err
			return nil, err
		}
	}
	if r.body != nil {
		if _, err := io.Copy(io.Discard, r.body); err != nil {
			r.err = err
			return nil, err
		}
	}
	if r.next == nil {
		r.err = io.EOF
		return nil, io.EOF
	}
	sender, date, _ := parseFromLine(r.next)
	r.next = nil
	b := &mboxBody{r: r, atStart: true, inHeader: true}
	r.body = b
	m := &mboxMessage{Sender: sender, Date: date}
	// The header section, line by line, through the body's own
	// unquoting.
	var hdr []byte
	for {
		line, err := b.line()
		if err != nil && err != io.EOF {
			r.err = err
			return nil, err
		}
		hdr = append(hdr, line...)
		if isBlank(line) {
			m.Complete = true
			break
		}
		if err == io.EOF || len(hdr) > maxMboxHeader {
			break
		}
	}
	m.Header = hdr
	b.inHeader = false
	if r.format == MboxCL2 && m.Complete {
		if n, ok := contentLength(hdr); ok {
			b.left = n
			b.counted = true
		}
	}
	m.Body = b
	r.n++
	return m, nil
}

// mboxBody reads one message's lines up to the next From_ line.
type mboxBody struct {
	r *mboxReader
	// atStart: the next byte begins a line.
	atStart bool
	// inHeader: the header section is being read, which a blank line
	// ends at once.
	inHeader bool
	// blank is a blank line held back: it is the separator when a From_
	// line or the end follows, and part of the message otherwise.
	blank []byte
	// pending are bytes of the current line not yet returned.
	pending []byte
	done    bool
	// counted: left is the number of body bytes a Content-Length gave
	// (mboxcl2); the body is read raw up to it.
	counted bool
	left    int64
	scratch []byte
}

// line returns the next line of the message (up to and with its LF, or
// a part of a line longer than the buffer), unquoted; io.EOF at the end
// of the message.
func (b *mboxBody) line() ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	r := b.r
	for {
		if b.counted {
			return b.countedLine()
		}
		if r.eof {
			b.done = true
			// A held blank line before the end of the file is the
			// separator.
			return nil, io.EOF
		}
		seg, err := r.br.ReadSlice('\n')
		if err == io.EOF {
			r.eof = true
			if len(seg) == 0 {
				continue
			}
		} else if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
		start := b.atStart
		b.atStart = err == nil
		if start && bytes.HasPrefix(seg, []byte("From ")) && err != bufio.ErrBufferFull {
			if _, _, ok := parseFromLine(seg); ok {
				r.next = append([]byte(nil), seg...)
				b.done = true
				b.blank = nil
				return nil, io.EOF
			}
		}
		if start && r.format != MboxCL2 {
			seg = unquoteFrom(seg, r.format)
		}
		if start && isBlank(seg) && err == nil && !b.inHeader {
			if b.blank != nil {
				// The earlier blank line is the message's.
				out := b.blank
				b.blank = append([]byte(nil), seg...)
				return out, nil
			}
			b.blank = append([]byte(nil), seg...)
			continue
		}
		if b.blank != nil {
			out := append(b.blank, seg...)
			b.blank = nil
			return out, nil
		}
		return seg, nil
	}
}

// countedLine reads mboxcl2 body bytes up to the Content-Length, then
// looks for the next From_ line.
func (b *mboxBody) countedLine() ([]byte, error) {
	r := b.r
	if b.left > 0 && !r.eof {
		if b.scratch == nil {
			b.scratch = make([]byte, 32<<10)
		}
		n, err := r.br.Read(b.scratch[:min(b.left, int64(len(b.scratch)))])
		b.left -= int64(n)
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			return nil, err
		}
		if n > 0 {
			return b.scratch[:n], nil
		}
	}
	// After the counted body: blank lines, then a From_ line or the end.
	b.counted = false
	b.done = true
	var skipped int
	for !r.eof {
		seg, err := r.br.ReadSlice('\n')
		if err == io.EOF {
			r.eof = true
		} else if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
		if bytes.HasPrefix(seg, []byte("From ")) {
			if _, _, ok := parseFromLine(seg); ok {
				r.next = append([]byte(nil), seg...)
				break
			}
		}
		if !isBlank(seg) {
			skipped += len(seg)
		}
	}
	if skipped > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("message %d: its Content-Length is wrong; %d bytes after it, up to the next message, were left out", r.n, skipped))
	}
	return nil, io.EOF
}

func (b *mboxBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		line, err := b.line()
		if err != nil {
			return 0, err
		}
		b.pending = line
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// unquoteFrom takes the quoting ">" off a body line (see the variants
// above).
func unquoteFrom(line []byte, format MboxFormat) []byte {
	if len(line) < 6 || line[0] != '>' {
		return line
	}
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if !bytes.HasPrefix(line[i:], []byte("From ")) {
		return line
	}
	if format == MboxO && i != 1 {
		return line
	}
	return line[1:]
}

// fromDateLayouts are the dates writers put on From_ lines: asctime
// (RFC 4155), with a zone after it or in it, without seconds, and RFC
// 5322's form that some tools use.
var fromDateLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04 2006",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
}

// parseFromLine reads a From_ line: "From SENDER DATE". ok is false when
// it has no date that parses: such a line is not a From_ line.
func parseFromLine(line []byte) (sender string, date time.Time, ok bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if !strings.HasPrefix(s, "From ") || len(s) > 1000 {
		return "", time.Time{}, false
	}
	f := strings.Fields(s[5:])
	if len(f) < 2 {
		return "", time.Time{}, false
	}
	// The date is at the end, or is followed by "remote from HOST"
	// (UUCP); the sender may contain spaces.
	for end := len(f); end >= 2; end-- {
		for start := 1; start < end; start++ {
			if end-start < 4 || end-start > 6 {
				continue
			}
			d := strings.Join(f[start:end], " ")
			for _, l := range fromDateLayouts {
				if t, err := time.Parse(l, d); err == nil {
					return strings.Join(f[:start], " "), t, true
				}
			}
		}
		if end < len(f)-3 {
			break
		}
	}
	return "", time.Time{}, false
}

// contentLength returns the Content-Length of a header section.
func contentLength(hdr []byte) (int64, bool) {
	for _, line := range bytes.Split(hdr, []byte("\n")) {
		if len(line) > 15 && strings.EqualFold(string(line[:15]), "content-length:") {
			n, err := strconv.ParseInt(strings.TrimSpace(string(line[15:])), 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}
