package smtpserver

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spoolMemory is how much of a submitted message a spool keeps in
// memory; the rest goes to a temporary file.
const spoolMemory = 1 << 20

// spool holds the body of a submitted message while it is delivered,
// queued and saved in Sent: each of them reads it once. Small bodies
// stay in memory, large ones go to a file that close removes.
type spool struct {
	dir      string
	mem      []byte
	f        *os.File
	n        int64
	eightBit bool // a byte >= 0x80 was seen
}

func newSpool(dir string) *spool { return &spool{dir: dir} }

// ReadFrom reads r to its end into the spool.
func (s *spool) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := s.write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (s *spool) write(b []byte) error {
	if !s.eightBit {
		for _, c := range b {
			if c >= 0x80 {
				s.eightBit = true
				break
			}
		}
	}
	s.n += int64(len(b))
	if s.f == nil && len(s.mem)+len(b) <= spoolMemory {
		s.mem = append(s.mem, b...)
		return nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "submission-*")
		if err != nil {
			return fmt.Errorf("spool message: %w", err)
		}
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return fmt.Errorf("spool message: %w", err)
		}
		s.mem = nil
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("spool message: %w", err)
	}
	return nil
}

// reader returns a reader of the whole spooled body, from its start.
func (s *spool) reader() io.Reader {
	if s.f != nil {
		return io.NewSectionReader(s.f, 0, s.n)
	}
	return bytes.NewReader(s.mem)
}

// close removes the spool file, if any.
func (s *spool) close() {
	if s.f != nil {
		name := s.f.Name()
		s.f.Close()
		os.Remove(name)
		s.f = nil
	}
	s.mem = nil
}
