package imapserver

import (
	"compress/flate"
	"errors"
	"io"
	"os"
	"time"

	"github.com/postfach/postfach/internal/imap"
)

// COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951) in both directions
// after the tagged OK of COMPRESS.
//
// Memory. A flate.Writer is large (about 1.1 MiB at BestSpeed, measured:
// its hash tables are arrays inside the struct), so a session holds one only
// while it writes: the writer comes from the server's pool when output
// starts and goes back after the flush that precedes every wait for the
// client. A fresh writer starts a new deflate block without references
// to earlier data, which is still the same raw deflate stream for the
// client: the previous writer ended with a sync flush (an empty stored
// block, not a final one), so its output is byte-aligned and complete.
// The cost is a little compression ratio between response bursts, not
// correctness.
//
// The inflater cannot give its state back: the client's compressor may
// refer to anything in the last 32 KiB it sent, so a compressed session
// keeps its inflater (inflate.go: the 32 KiB window and small code
// tables) for as long as it lives. docs/benchmarks.md has the measured
// figures.
//
// Waiting. The uncompressed session waits for its client with a read
// whose deadline the store's event publisher moves into the past to wake
// it (see waker). An inflater in the middle of a block cannot survive
// that: an error from its source is permanent for it. So the compressed
// input does its blocking read below the inflater (deflateIn.fill), and
// when that read is woken for a push (IDLE or NOTIFY), it runs the push
// right there and reads on; the inflater never sees the interruption.

// deflateLevel is the compression level of responses: BestSpeed costs
// little CPU and gets most of the gain on IMAP's text responses.
const deflateLevel = flate.BestSpeed

// compression is the state of a session after COMPRESS DEFLATE.
type compression struct {
	in  *deflateIn
	out *deflateOut
	fr  *inflater // over in
}

// deflateOut compresses what the session writes. fw is taken from the
// server's pool on the first write after a flush-and-release and given
// back by release.
type deflateOut struct {
	s     *session
	fw    *flate.Writer
	dirty bool // written to fw since the last Flush
}

func (d *deflateOut) Write(p []byte) (int, error) {
	if d.fw == nil {
		d.fw = d.s.srv.deflaters.Get().(*flate.Writer)
		d.fw.Reset(rawConnWriter{d.s})
	}
	d.dirty = true
	return d.fw.Write(p)
}

// Flush ends the compressed output so far with a sync flush, so the
// client can decompress every byte of it (RFC 4978 §4: flush after each
// burst of responses).
func (d *deflateOut) Flush() error {
	if d.fw == nil || !d.dirty {
		return nil
	}
	d.dirty = false
	return d.fw.Flush()
}

// release gives the writer back to the pool; everything written must have
// been flushed.
func (d *deflateOut) release() {
	if d.fw != nil {
		d.fw.Reset(io.Discard)
		d.s.srv.deflaters.Put(d.fw)
		d.fw = nil
	}
}

// inflateReader is the session's input after COMPRESS. When the inflater
// needs new input it waits for it here, not deep inside the inflater, so
// the goroutine's stack is shallow (and shrinks) while the session waits;
// deflateIn.fill handles wakes either way.
type inflateReader struct{ c *compression }

func (r inflateReader) Read(p []byte) (int, error) {
	if r.c.in.Buffered() == 0 && r.c.fr.drained() {
		if err := r.c.in.fill(); err != nil {
			return 0, err
		}
	}
	return r.c.fr.Read(p)
}

// rawConnWriter writes compressed bytes to the connection (plain or TLS).
type rawConnWriter struct{ s *session }

func (w rawConnWriter) Write(p []byte) (int, error) { return w.s.conn.Write(p) }

// deflateIn is the compressed byte source under the inflater: a small
// buffer over the connection, with the bytes of the client's compressed
// stream that were read before COMPRESS took effect first.
type deflateIn struct {
	s    *session
	pre  []byte
	buf  [512]byte
	r, w int
	err  error
}

func (d *deflateIn) ReadByte() (byte, error) {
	if len(d.pre) > 0 {
		c := d.pre[0]
		d.pre = d.pre[1:]
		return c, nil
	}
	if d.r == d.w {
		if err := d.fill(); err != nil {
			return 0, err
		}
	}
	c := d.buf[d.r]
	d.r++
	return c, nil
}

// Buffered implements byteSource.
func (d *deflateIn) Buffered() int { return len(d.pre) + d.w - d.r }

func (d *deflateIn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(d.pre) > 0 {
		n := copy(p, d.pre)
		d.pre = d.pre[n:]
		return n, nil
	}
	if d.r == d.w {
		if err := d.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, d.buf[d.r:d.w])
	d.r += n
	return n, nil
}

// fill reads compressed bytes from the connection. A read interrupted by
// the store's event publisher while the session waits (IDLE, or NOTIFY
// between commands) runs the push and reads on, so the inflater above
// never sees an error it could not recover from. Any other error is
// final.
func (d *deflateIn) fill() error {
	if d.err != nil {
		return d.err
	}
	s := d.s
	for {
		n, err := s.conn.Read(d.buf[:])
		if n > 0 {
			d.r, d.w = 0, n
			return nil
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && (s.tc == nil || !s.tc.Draining()) {
			handled, perr := s.pushWhileBlocked()
			if perr != nil {
				d.err = perr
				return perr
			}
			if handled {
				continue
			}
		}
		d.err = err
		return err
	}
}

// pushWhileBlocked is called when a read below the inflater timed out.
// When the session was waiting and an event woke it, the event is
// reported (as the uncompressed path does after errWake) and the wait is
// re-armed: handled is true. Otherwise the timeout is real (idle timeout)
// and handled is false.
func (s *session) pushWhileBlocked() (handled bool, err error) {
	for {
		s.wake.mu.Lock()
		if !s.wake.waiting || !s.wake.woken {
			s.wake.mu.Unlock()
			return false, nil
		}
		s.wake.woken = false
		s.wake.waiting = false
		s.wake.mu.Unlock()
		if err := s.pushWake(); err != nil {
			return true, err
		}
		s.wake.mu.Lock()
		if s.wake.woken {
			// Woken again during the push: push again.
			s.wake.waiting = true
			s.wake.mu.Unlock()
			continue
		}
		s.setReadDeadlineLocked(s.waitUntil)
		s.wake.waiting = true
		s.wake.mu.Unlock()
		if time.Now().After(s.waitUntil) {
			return false, nil
		}
		return true, nil
	}
}

// cmdCompress: COMPRESS (RFC 4978 §3). The tagged OK is the last
// uncompressed data in both directions.
func (s *session) cmdCompress(cmd imap.Command) error {
	c := cmd.(*imap.Compress)
	if c.Algorithm != "DEFLATE" {
		return bad("", "Unsupported compression algorithm")
	}
	if s.comp != nil {
		// RFC 4978 §3: only once per connection.
		return no("COMPRESSIONACTIVE", "DEFLATE is already active")
	}
	_ = s.enc.StatusResponse(c.Tag, imap.OK, "", "DEFLATE active")
	if err := s.flush(); err != nil {
		return &connError{err}
	}
	// Bytes the client sent after the command (it may start compressing
	// before it reads our OK) are compressed data: the reader's buffer
	// first, then what the small read holds.
	var pre []byte
	if n := s.br.Buffered(); n > 0 {
		b, _ := s.br.Peek(n)
		pre = append(pre, b...)
	}
	pre = append(pre, s.src.pending...)
	in := &deflateIn{s: s, pre: pre}
	comp := &compression{in: in, out: &deflateOut{s: s}}
	comp.fr = newInflater(in)
	s.comp = comp
	s.in = inflateReader{comp}
	s.out = comp.out
	s.src = pendingReader{r: s.in, s: s}
	s.br.Reset(&s.src)
	s.r.Reset(s.br)
	s.enc.SetFlushHook(comp.out.Flush)
	return errResponded
}
