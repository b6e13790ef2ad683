package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// LMTPClient is a lean LMTP client (RFC 2033) for load generation. It
// pipelines MAIL, RCPT and DATA when the server offers PIPELINING
// (RFC 2920) and reads one reply per accepted recipient after the data.
// With DialSMTP it speaks SMTP (RFC 5321) instead: EHLO, and one reply
// for the whole message after the data. Not safe for concurrent use.
type LMTPClient struct {
	conn       net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	timeout    time.Duration
	pipelining bool
	smtp       bool // one reply after the data (RFC 5321 §4.1.1.4)
	line       []byte
	codes      []int
}

// DialLMTP connects, reads the 220 greeting and sends LHLO.
func DialLMTP(ctx context.Context, d *Dialer, addr, helo string) (*LMTPClient, error) {
	return dialMail(ctx, d, addr, helo, false)
}

// DialSMTP connects to an SMTP server (an MX), reads the 220 greeting and
// sends EHLO.
func DialSMTP(ctx context.Context, d *Dialer, addr, helo string) (*LMTPClient, error) {
	return dialMail(ctx, d, addr, helo, true)
}

func dialMail(ctx context.Context, d *Dialer, addr, helo string, smtp bool) (*LMTPClient, error) {
	conn, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &LMTPClient{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), w: bufio.NewWriterSize(conn, 64<<10), timeout: d.timeout(), smtp: smtp}
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	code, text, err := c.readReply(nil)
	if err != nil || code != 220 {
		conn.Close()
		return nil, fmt.Errorf("lmtp greeting: %d %s %v", code, text, err)
	}
	// RFC 2033 §4.1: LHLO instead of EHLO.
	verb := "LHLO"
	if smtp {
		verb = "EHLO"
	}
	fmt.Fprintf(c.w, "%s %s\r\n", verb, helo)
	if err := c.w.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	code, text, err = c.readReply(func(l []byte) {
		if bytes.EqualFold(bytes.TrimSpace(l), []byte("PIPELINING")) {
			c.pipelining = true
		}
	})
	if err != nil || code != 250 {
		conn.Close()
		return nil, fmt.Errorf("%s: %d %s %v", strings.ToLower(verb), code, text, err)
	}
	return c, nil
}

// Pipelining reports whether the server offered PIPELINING.
func (c *LMTPClient) Pipelining() bool { return c.pipelining }

// Close sends QUIT and closes the connection.
func (c *LMTPClient) Close() error {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	c.w.WriteString("QUIT\r\n")
	c.w.Flush()
	return c.conn.Close()
}

// readReply reads a possibly multi-line reply ("250-a", "250 b") and
// returns its code and last line's text. ext sees the text of each line.
func (c *LMTPClient) readReply(ext func([]byte)) (int, string, error) {
	for {
		line, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Overlong reply line: keep reading, its text is not needed.
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read reply: %w", err)
		}
		code, more, text, ok := parseReplyLine(line)
		if !ok {
			return 0, "", fmt.Errorf("malformed reply %q", trunc(line))
		}
		if ext != nil {
			ext(text)
		}
		if !more {
			return code, string(text), nil
		}
	}
}

// parseReplyLine splits "250-text\r\n" into 250, true, "text".
func parseReplyLine(line []byte) (code int, more bool, text []byte, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 3 {
		return 0, false, nil, false
	}
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return 0, false, nil, false
		}
		code = code*10 + int(d-'0')
	}
	if len(line) == 3 {
		return code, false, nil, true
	}
	switch line[3] {
	case '-':
		more = true
	case ' ':
	default:
		return 0, false, nil, false
	}
	return code, more, line[4:], true
}

// Deliver sends one message to rcpts. data must be in SMTP form (see
// SMTPData). It returns one reply code per recipient: the RCPT reply when
// the recipient was refused, else its reply after the data (RFC 2033
// §4.2). A non-nil error means the connection is unusable.
func (c *LMTPClient) Deliver(from string, rcpts []string, data []byte) ([]int, error) {
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	c.codes = c.codes[:0]
	fmt.Fprintf(c.w, "MAIL FROM:<%s>\r\n", from)
	if !c.pipelining {
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
		code, text, err := c.readReply(nil)
		if err != nil {
			return nil, err
		}
		if code/100 != 2 {
			return c.fail(len(rcpts), code, text)
		}
	}
	for _, r := range rcpts {
		fmt.Fprintf(c.w, "RCPT TO:<%s>\r\n", r)
		if !c.pipelining {
			if err := c.w.Flush(); err != nil {
				return nil, err
			}
			code, _, err := c.readReply(nil)
			if err != nil {
				return nil, err
			}
			c.codes = append(c.codes, code)
		}
	}
	c.w.WriteString("DATA\r\n")
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	if c.pipelining {
		code, text, err := c.readReply(nil)
		if err != nil {
			return nil, err
		}
		if code/100 != 2 {
			// The RCPTs and DATA are still answered.
			for range rcpts {
				if _, _, err := c.readReply(nil); err != nil {
					return nil, err
				}
			}
			if _, _, err := c.readReply(nil); err != nil {
				return nil, err
			}
			return c.fail(len(rcpts), code, text)
		}
		for range rcpts {
			code, _, err := c.readReply(nil)
			if err != nil {
				return nil, err
			}
			c.codes = append(c.codes, code)
		}
	}
	code, _, err := c.readReply(nil)
	if err != nil {
		return nil, err
	}
	if code != 354 {
		// No recipient accepted, or DATA refused: the codes stand.
		for i := range c.codes {
			if c.codes[i]/100 == 2 {
				c.codes[i] = code
			}
		}
		return c.codes, c.rset()
	}
	if _, err := c.w.Write(data); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	if c.smtp {
		// RFC 5321 §4.2.5: one reply for all recipients.
		code, _, err := c.readReply(nil)
		if err != nil {
			return nil, err
		}
		for i := range c.codes {
			if c.codes[i]/100 == 2 {
				c.codes[i] = code
			}
		}
		return c.codes, nil
	}
	for i := range c.codes {
		if c.codes[i]/100 != 2 {
			continue
		}
		code, _, err := c.readReply(nil)
		if err != nil {
			return nil, err
		}
		c.codes[i] = code
	}
	return c.codes, nil
}

func (c *LMTPClient) fail(n, code int, text string) ([]int, error) {
	for range n {
		c.codes = append(c.codes, code)
	}
	if err := c.rset(); err != nil {
		return nil, err
	}
	_ = text
	return c.codes, nil
}

func (c *LMTPClient) rset() error {
	c.w.WriteString("RSET\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, _, err := c.readReply(nil)
	return err
}

// SMTPData returns msg as the DATA payload: line endings made CRLF, lines
// starting with "." doubled (RFC 5321 §4.5.2), and the final ".\r\n".
func SMTPData(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/50+8)
	atStart := true
	for i := 0; i < len(msg); i++ {
		b := msg[i]
		if atStart && b == '.' {
			out = append(out, '.')
		}
		switch b {
		case '\r':
			if i+1 < len(msg) && msg[i+1] == '\n' {
				continue // the \n writes the pair
			}
			out = append(out, '\r', '\n')
			atStart = true
			continue
		case '\n':
			out = append(out, '\r', '\n')
			atStart = true
			continue
		}
		out = append(out, b)
		atStart = false
	}
	if !atStart {
		out = append(out, '\r', '\n')
	}
	return append(out, '.', '\r', '\n')
}
