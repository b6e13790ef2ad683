package smtpserver

import (
	"fmt"
	"io"
	"os"
)

// spoolMemory is how much of a message a spool keeps in memory; a larger
// message goes to a temporary file.
const spoolMemory = 1 << 20

// spool holds a received message while the sender authentication checks
// read it (DKIM verification needs all of it before the message can be
// stored with its Authentication-Results on top): in memory up to
// spoolMemory, then in an unlinked temporary file in dir, which goes
// away with the process whatever happens. Write appends; ReadAt reads
// what was written.
type spool struct {
	dir string
	buf []byte
	f   *os.File
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
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
			s.buf = append(s.buf, make([]byte, max(4096, len(s.buf)))...)[:len(s.buf)]
		}
		n, err := r.Read(s.buf[len(s.buf):min(cap(s.buf), spoolMemory+1)])
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

// Size is the number of bytes written.
func (s *spool) Size() int64 { return s.n }

// Close releases the memory and the file.
func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.buf = nil
}
