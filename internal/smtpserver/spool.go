package smtpserver

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// spoolMemory is how much of a message a spool keeps in memory; a larger
// message goes to a temporary file.
const spoolMemory = 1 << 20

// spool holds a received message while it is read more than once: the
// MX's sender authentication checks read it before it is stored with its
// Authentication-Results on top (DKIM verification needs all of it), and
// a submitted message is delivered, queued and saved in Sent from it.
// It lives in memory up to spoolMemory, then in an unlinked temporary
// file in dir, which goes away with the process whatever happens. Write
// appends; ReadAt and reader read what was written.
type spool struct {
	dir      string
	buf      []byte // from spoolBufs, given back by Close
	f        *os.File
	n        int64
	eightBit bool // a byte >= 0x80 was written
}

func newSpool(dir string) *spool {
	s := &spool{dir: dir}
	if b, ok := spoolBufs.Get().(*[]byte); ok {
		s.buf = (*b)[:0]
	}
	return s
}

// spoolBufs are the memory of closed spools, for the next: a spool that
// grew its buffer a few times for every message was a good part of the
// checks' allocations on the MX (issue 16).
var spoolBufs sync.Pool

// maxPooledSpool bounds the buffers kept in spoolBufs.
const maxPooledSpool = 2 * spoolMemory

// note8 records whether p holds a byte >= 0x80.
func (s *spool) note8(p []byte) {
	if s.eightBit {
		return
	}
	// Eight bytes at a time: the test was a good part of the spool's cost
	// on the MX.
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p)&0x8080808080808080 != 0 {
			s.eightBit = true
			return
		}
		p = p[8:]
	}
	for _, c := range p {
		if c >= 0x80 {
			s.eightBit = true
			return
		}
	}
}

func (s *spool) Write(p []byte) (int, error) {
	s.note8(p)
	if s.f == nil && len(s.buf)+len(p) <= spoolMemory {
		s.buf = append(s.buf, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "postfach-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool message: %w", err)
		}
		// Unlinked at once: nothing is left behind by a crash.
		_ = os.Remove(f.Name())
		s.f = f
		if _, err := f.Write(s.buf); err != nil {
			return 0, fmt.Errorf("spool message: %w", err)
		}
		s.buf = nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("spool message: %w", err)
	}
	return n, nil
}

// ReadFrom implements io.ReaderFrom: it reads into the spool's memory
// directly, without io.Copy's buffer.
func (s *spool) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for s.f == nil {
		if len(s.buf) == cap(s.buf) {
			s.buf = slices.Grow(s.buf, max(4096, len(s.buf)))
		}
		n, err := r.Read(s.buf[len(s.buf):min(cap(s.buf), spoolMemory+1)])
		s.note8(s.buf[len(s.buf) : len(s.buf)+n])
		s.buf = s.buf[:len(s.buf)+n]
		s.n += int64(n)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if len(s.buf) > spoolMemory {
			// Over the memory: to a file, and the rest after it.
			buf := s.buf
			s.buf, s.n = nil, 0
			if _, err := s.Write(buf); err != nil {
				return total, err
			}
		}
	}
	n, err := io.Copy(struct{ io.Writer }{s}, r)
	return total + n, err
}

// ReadAt implements io.ReaderAt.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	if off >= int64(len(s.buf)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns a reader of the whole spooled message from its start;
// each call returns a new one.
func (s *spool) reader() io.Reader { return io.NewSectionReader(s, 0, s.n) }

// Size is the number of bytes written.
func (s *spool) Size() int64 { return s.n }

// Close releases the memory and the file. Nothing read from the spool
// may be used after it: its memory goes to the next spool.
func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.buf != nil && cap(s.buf) <= maxPooledSpool {
		b := s.buf[:0]
		spoolBufs.Put(&b)
	}
	s.buf = nil
}
