package msgauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// readHeaderBytes reads the message header from br, up to and including
// the empty line that ends it (RFC 5322 §2.1), or all of a message
// without a body. It stops at the first line end after max bytes: a
// longer header is cut there, and the rest stays in br.
func readHeaderBytes(br *bufio.Reader, max int) ([]byte, error) {
	var h []byte
	partial := false // the last read ended inside a line
	for len(h) < max {
		line, err := br.ReadSlice('\n')
		h = append(h, line...)
		wasPartial := partial
		partial = errors.Is(err, bufio.ErrBufferFull)
		if partial || wasPartial {
			continue
		}
		if errors.Is(err, io.EOF) {
			return h, nil
		}
		if err != nil {
			return h, err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return h, nil
		}
	}
	return h, nil
}

// field is one header field as it stands in the message.
type field struct {
	name string // as written
	// raw is the whole field with its continuation lines and final line
	// break; start is its offset in the header.
	raw   []byte
	start int
}

// value returns the field's body, unfolded (RFC 5322 §2.2.3), without
// the leading blank.
func (f field) value() string {
	i := bytes.IndexByte(f.raw, ':')
	return strings.TrimSpace(unfold.Replace(string(f.raw[i+1:])))
}

// unfold removes the line breaks of folded header fields.
var unfold = strings.NewReplacer("\r\n", "", "\n", "", "\r", "")

// splitFields splits a header (as readHeaderBytes returns it) into its
// fields. Lines that are neither a field nor a continuation (no colon)
// are skipped, as verifiers do.
func splitFields(header []byte) []field {
	var out []field
	for off := 0; off < len(header); {
		end := bytes.IndexByte(header[off:], '\n')
		if end < 0 {
			end = len(header)
		} else {
			end += off + 1
		}
		line := header[off:end]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the end of the header
		}
		if line[0] == ' ' || line[0] == '\t' {
			if n := len(out); n > 0 && out[n-1].start+len(out[n-1].raw) == off {
				out[n-1].raw = header[out[n-1].start:end]
			}
			off = end
			continue
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			name := string(bytes.TrimRight(line[:i], " \t"))
			out = append(out, field{name: name, raw: header[off:end], start: off})
		}
		off = end
	}
	return out
}
