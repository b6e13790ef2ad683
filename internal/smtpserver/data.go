package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/postfach/postfach/internal/store"
)

// errDataTooBig is returned by the message readers once a message grows
// past the size limit; it wraps store.ErrTooBig, so replyFor answers it
// with 552 5.3.4.
var errDataTooBig = fmt.Errorf("message data over the size limit: %w", store.ErrTooBig)

// dataReader reads the message data of a DATA command (RFC 5321
// §4.1.1.4) from the connection's buffered reader, removes the
// dot-stuffing (§4.5.2) and ends at the line that holds only a period.
//
// It works on whole buffered runs of bytes, never byte by byte: it copies
// from the buffer up to the next LF (bytes.IndexByte) and looks at the
// first bytes of a line only.
//
// Lines end in CRLF, and only CRLF "." CRLF ends the data: "\n.\r\n" and
// "\r\n.\n" do not, which keeps a message from being split in two the
// way an MTA in front of us may not (SMTP smuggling).
//
// A bare LF also begins a new line for the unstuffing: the store ends
// that line with CRLF (message.NewCRLFReader), and the clients that send
// bare LF (Python's smtplib given bytes, scripts) dot-stuff after every
// LF, so a leading period after it is removed like one after CRLF. A bare
// CR does not begin a line here, although the store turns it into CRLF
// too: no client stuffs after a bare CR (smtplib's stuffing is
// line-based on LF, Go's textproto.DotWriter passes a bare CR as data),
// so a period after one is the message's own. With these two rules, the
// message a client dot-stuffed is stored byte for byte as `postfach
// deliver` stores it.
type dataReader struct {
	r   *bufio.Reader
	max int64 // size limit of the unstuffed data; 0: none

	n int64 // unstuffed bytes returned so far

	bol       bool // the next byte begins a line (after any LF)
	afterCRLF bool // ... and the line before ended in CRLF: "." CRLF ends the data
	cr        bool // the last byte returned was CR
	done      bool // the end-of-data line has been consumed

	// err is sticky: errDataTooBig, or readErr.
	err error
	// readErr is the connection's read error (io.ErrUnexpectedEOF for a
	// closed connection): the session cannot go on after it.
	readErr error
}

func newDataReader(r *bufio.Reader, max int64) *dataReader {
	// The CRLF that ended the DATA command line comes before the data.
	return &dataReader{r: r, max: max, bol: true, afterCRLF: true}
}

// Read implements io.Reader. It returns what is buffered without waiting
// for more once it has something, so the store sees data as it arrives.
func (d *dataReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	for n < len(p) && !d.done {
		if d.r.Buffered() == 0 {
			if n > 0 {
				break
			}
			if _, err := d.r.Peek(1); err != nil {
				return n, d.fail(err)
			}
		}
		buf, _ := d.r.Peek(d.r.Buffered())
		if d.bol && buf[0] == '.' {
			// RFC 5321 §4.5.2: a line "." ends the data; another
			// leading period is removed. After CRLF three bytes
			// decide which; after a bare LF the period is removed.
			if d.afterCRLF {
				if len(buf) < 3 {
					if n > 0 {
						break
					}
					var err error
					if buf, err = d.r.Peek(3); err != nil {
						return n, d.fail(err)
					}
				}
				if buf[1] == '\r' && buf[2] == '\n' {
					_, _ = d.r.Discard(3)
					d.done = true
					break
				}
			}
			_, _ = d.r.Discard(1)
			d.bol = false
			continue
		}
		seg := buf[:min(len(buf), len(p)-n)]
		if i := bytes.IndexByte(seg, '\n'); i >= 0 {
			seg = seg[:i+1]
		}
		if d.max > 0 && d.n+int64(len(seg)) > d.max {
			d.err = errDataTooBig
			return n, d.err
		}
		last := seg[len(seg)-1]
		d.bol = last == '\n'
		if d.bol {
			if len(seg) > 1 {
				d.afterCRLF = seg[len(seg)-2] == '\r'
			} else {
				d.afterCRLF = d.cr
			}
		}
		d.cr = last == '\r'
		n += copy(p[n:], seg)
		d.n += int64(len(seg))
		_, _ = d.r.Discard(len(seg))
	}
	if n == 0 && d.done {
		return 0, io.EOF
	}
	return n, nil
}

func (d *dataReader) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	d.readErr = err
	d.err = err
	return err
}

// drain reads and drops what is left of the data, up to the end-of-data
// line, so the session can answer and go on after a refused message. It
// returns the connection's read error, if any.
//
// At most limit more bytes are read (0: no limit); when the data goes on
// beyond them, drain stops and returns errDiscardLimit, and the session
// must end: a client that streams data after its message was refused
// would otherwise hold the connection for as long as it likes.
func (d *dataReader) drain(limit int64) error {
	if d.readErr != nil {
		return d.readErr
	}
	d.err = nil
	d.max = 0
	if limit > 0 {
		d.max = d.n + limit
	}
	_, err := io.Copy(io.Discard, d)
	if errors.Is(err, errDataTooBig) {
		return errDiscardLimit
	}
	return err
}

// chunk is one part of a message sent in chunks: a BDAT chunk of size
// bytes from the connection (RFC 3030 §2), or a BURL part (RFC 4468 §3)
// read from url.
type chunk struct {
	size int64
	last bool
	url  io.ReadCloser
}

// errDiscardLimit: the data of a refused message went on past what the
// server reads to stay in step with the client (session.discardLimit).
var errDiscardLimit = errors.New("refused message data beyond the discard limit")

// chunkSource supplies the chunks of a BDAT transaction after the first:
// it acknowledges the chunk just read and reads the next BDAT (or BURL)
// command (RFC 3030 §2). It returns the next chunk, or errBDATInterrupted
// when the client sent another command, or an error *reply when a BURL
// URL cannot be resolved.
type chunkSource func(prev chunk) (chunk, error)

// errBDATInterrupted ends a BDAT transaction that a command other than
// BDAT interrupted before its LAST chunk.
var errBDATInterrupted = errors.New("bdat transaction interrupted by another command")

// errURLShort is the error of a BURL part that ended before the size
// its URL gave.
var errURLShort = errors.New("imap url part shorter than announced")

// bdatReader reads the message of a BDAT transaction (RFC 3030): the
// chunks as sent, without any unstuffing, one after the other until the
// chunk marked LAST; BURL parts (RFC 4468) among them are read from
// their URLs.
type bdatReader struct {
	r     *bufio.Reader
	next  chunkSource
	max   int64 // size limit; 0: none
	n     int64 // bytes returned so far
	cur   chunk // the current chunk
	left  int64 // bytes of the current chunk not read yet
	err   error // sticky
	netEr error // the connection's read error
}

func newBDATReader(r *bufio.Reader, first chunk, max int64, next chunkSource) *bdatReader {
	return &bdatReader{r: r, next: next, max: max, cur: first, left: first.size}
}

// Read implements io.Reader.
func (b *bdatReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for b.left == 0 {
		prev := b.cur // its url, closed, still says it was a BURL part
		b.closeURL()
		if prev.last {
			return 0, io.EOF
		}
		c, err := b.next(prev)
		if err != nil {
			b.err = err
			var rerr *reply
			if !errors.Is(err, errBDATInterrupted) && !errors.As(err, &rerr) {
				b.netEr = err
			}
			return 0, err
		}
		b.cur, b.left = c, c.size
	}
	if b.max > 0 && b.n+b.left > b.max {
		// The chunk sizes are known ahead: refuse before reading.
		b.err = errDataTooBig
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	if u := b.cur.url; u != nil {
		n, err := u.Read(p)
		b.left -= int64(n)
		b.n += int64(n)
		if err == io.EOF && b.left > 0 {
			err = errURLShort
		}
		if err != nil && err != io.EOF {
			b.err = fmt.Errorf("read imap url: %w", err)
			return n, b.err
		}
		return n, nil
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	b.n += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err, b.netEr = err, err
		return n, err
	}
	return n, nil
}

// closeURL closes the current BURL part, if any.
func (b *bdatReader) closeURL() {
	if b.cur.url != nil {
		b.cur.url.Close()
		b.cur.url = nil
	}
}

// drain drops the rest of the current chunk, so the session can answer
// the BDAT command it belongs to. It returns the connection's read error,
// if any.
//
// A rest larger than limit (0: no limit) is not read: drain returns
// errDiscardLimit, and the session must end.
func (b *bdatReader) drain(limit int64) error {
	if b.netEr != nil {
		b.closeURL()
		return b.netEr
	}
	if b.cur.url != nil {
		b.closeURL()
		b.left = 0
		return nil
	}
	if limit > 0 && b.left > limit {
		return errDiscardLimit
	}
	err := discardChunk(b.r, b.left)
	b.left = 0
	if err != nil {
		b.netEr = err
	}
	return err
}

// discardChunk drops size bytes of a BDAT chunk that is refused (RFC 3030
// §2: the chunk is read even when the command fails).
func discardChunk(r *bufio.Reader, size int64) error {
	for size > 0 {
		n, err := r.Discard(int(min(size, 1<<30)))
		size -= int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
