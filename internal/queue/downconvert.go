package queue

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"

	"github.com/postfach/postfach/internal/message"
)

// To7Bit converts an 8-bit message for a hop without 8BITMIME (RFC 6152
// §3: the client converts, or bounces): every leaf part whose body holds
// bytes above 127 or NUL is re-encoded, text in quoted-printable and
// everything else in base64 (RFC 2045 §6), and gets the matching
// Content-Transfer-Encoding field; multiparts and message/rfc822 parts
// declared 8bit or binary are declared 7bit, since their parts now are
// (RFC 2046 §5.2.1 allows only 7bit, 8bit or binary there). Headers are
// left as they are: non-ASCII there needs SMTPUTF8, not 8BITMIME. Lines
// longer than 998 octets in a 7-bit body are encoded too (RFC 5322
// §2.1.1).
//
// DKIM signing (RFC 6376 §5.3) converts before signing, so that no hop
// has to change a signed body.
func To7Bit(msg []byte) ([]byte, error) {
	sum, err := message.Parse(bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	c := &converter{msg: msg, out: make([]byte, 0, len(msg)+len(msg)/3)}
	c.part(&sum.Root)
	c.out = append(c.out, msg[c.pos:]...)
	return c.out, nil
}

// Needs8Bit reports whether msg has bytes above 127 or NUL anywhere.
func Needs8Bit(msg []byte) bool {
	for _, b := range msg {
		if b >= 0x80 || b == 0 {
			return true
		}
	}
	return false
}

type converter struct {
	msg []byte
	out []byte
	pos int64 // msg[:pos] is written (converted) to out
}

func (c *converter) part(p *message.Part) {
	if len(p.Parts) > 0 {
		if p.Encoding == "8bit" || p.Encoding == "binary" {
			c.header(p, "7bit")
			c.pos = p.BodyStart
		}
		for i := range p.Parts {
			c.part(&p.Parts[i])
		}
		return
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary":
	default:
		return // already quoted-printable or base64 (or unknown: leave it)
	}
	body := c.msg[p.BodyStart:p.End]
	if !Needs8Bit(body) && !longLines(body) {
		if p.Encoding == "8bit" || p.Encoding == "binary" {
			c.header(p, "7bit")
			c.out = append(c.out, body...)
			c.pos = p.End
		}
		return
	}
	if p.Type == "text" {
		c.header(p, "quoted-printable")
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(body)
		w.Close()
		c.out = append(c.out, b.Bytes()...)
	} else {
		c.header(p, "base64")
		enc := base64.StdEncoding.EncodeToString(body)
		for len(enc) > 76 {
			c.out = append(c.out, enc[:76]...)
			c.out = append(c.out, "\r\n"...)
			enc = enc[76:]
		}
		c.out = append(c.out, enc...)
		if bytes.HasSuffix(body, []byte("\n")) {
			c.out = append(c.out, "\r\n"...)
		}
	}
	c.pos = p.End
}

// header writes what comes before p's header and p's header with its
// Content-Transfer-Encoding fields replaced by one saying cte, just
// before the blank line.
func (c *converter) header(p *message.Part, cte string) {
	c.out = append(c.out, c.msg[c.pos:p.HeaderStart]...)
	hdr := c.msg[p.HeaderStart:p.BodyStart]
	field := []byte("Content-Transfer-Encoding: " + cte + "\r\n")
	skipping := false
	added := false
	for len(hdr) > 0 {
		i := bytes.IndexByte(hdr, '\n')
		line := hdr
		if i >= 0 {
			line = hdr[:i+1]
		}
		hdr = hdr[len(line):]
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0:
			// The blank line ending the header.
			if !added {
				c.out = append(c.out, field...)
				added = true
			}
			c.out = append(c.out, line...)
			skipping = false
			continue
		case line[0] == ' ' || line[0] == '\t':
			if skipping {
				continue
			}
		default:
			name, _, _ := bytes.Cut(trimmed, []byte(":"))
			skipping = bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Transfer-Encoding"))
			if skipping {
				continue
			}
		}
		c.out = append(c.out, line...)
	}
	if !added {
		c.out = append(c.out, field...)
		c.out = append(c.out, "\r\n"...)
	}
}

// longLines reports whether b has a line longer than 998 octets.
func longLines(b []byte) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return len(b) > 998
		}
		if i > 999 {
			return true
		}
		b = b[i+1:]
	}
	return false
}
