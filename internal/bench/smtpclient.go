package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"time"
)

// SubmitClient is a lean submission client (RFC 6409) for load
// generation: EHLO, STARTTLS when asked, AUTH PLAIN, then messages with
// MAIL, RCPT and DATA pipelined when the server offers PIPELINING
// (RFC 2920). Not safe for concurrent use.
type SubmitClient struct {
	conn       net.Conn
	r          *bufio.Reader
	w          *bufio.Writer
	timeout    time.Duration
	pipelining bool
	startTLS   bool
}

// SubmitDial says how a SubmitClient connects and signs in.
type SubmitDial struct {
	Addr string
	// StartTLS sends STARTTLS after the first EHLO (the certificate is
	// not verified: loopback benchmarks).
	StartTLS bool
	// User and Password sign in with AUTH PLAIN; an empty User sends no
	// AUTH (a server that relays for its local network).
	User, Password string
	Helo           string
}

// DialSubmit connects, reads the greeting, says EHLO, starts TLS and
// authenticates as sd says.
func DialSubmit(ctx context.Context, d *Dialer, sd SubmitDial) (*SubmitClient, error) {
	conn, err := d.dial(ctx, sd.Addr)
	if err != nil {
		return nil, err
	}
	c := &SubmitClient{conn: conn, timeout: d.timeout()}
	c.setConn(conn)
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	if code, text, err := c.reply(nil); err != nil || code != 220 {
		return nil, fmt.Errorf("smtp greeting: %d %s %v", code, text, err)
	}
	if err := c.ehlo(sd.Helo); err != nil {
		return nil, err
	}
	if sd.StartTLS {
		if !c.startTLS {
			return nil, fmt.Errorf("server offers no STARTTLS")
		}
		if code, text, err := c.cmd("STARTTLS"); err != nil || code != 220 {
			return nil, fmt.Errorf("starttls: %d %s %v", code, text, err)
		}
		// Loopback benchmark against a self-signed certificate.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // loopback benchmark only
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
		c.conn = tc
		c.setConn(tc)
		if err := c.ehlo(sd.Helo); err != nil {
			return nil, err
		}
	}
	if sd.User != "" {
		// RFC 4954 §4 with the initial response; RFC 4616: PLAIN.
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + sd.User + "\x00" + sd.Password))
		if code, text, err := c.cmd("AUTH PLAIN " + ir); err != nil || code != 235 {
			return nil, fmt.Errorf("auth: %d %s %v", code, text, err)
		}
	}
	ok = true
	return c, nil
}

func (c *SubmitClient) setConn(conn net.Conn) {
	c.r = bufio.NewReaderSize(conn, 16<<10)
	c.w = bufio.NewWriterSize(conn, 64<<10)
}

func (c *SubmitClient) ehlo(helo string) error {
	if helo == "" {
		helo = "bench.localhost"
	}
	c.pipelining, c.startTLS = false, false
	code, text, err := c.cmdExt("EHLO "+helo, func(l []byte) {
		switch {
		case bytes.EqualFold(bytes.TrimSpace(l), []byte("PIPELINING")):
			c.pipelining = true
		case bytes.EqualFold(bytes.TrimSpace(l), []byte("STARTTLS")):
			c.startTLS = true
		}
	})
	if err != nil || code != 250 {
		return fmt.Errorf("ehlo: %d %s %v", code, text, err)
	}
	return nil
}

func (c *SubmitClient) cmd(line string) (int, string, error) { return c.cmdExt(line, nil) }

func (c *SubmitClient) cmdExt(line string, ext func([]byte)) (int, string, error) {
	c.w.WriteString(line + "\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	return c.reply(ext)
}

// reply reads a possibly multi-line reply.
func (c *SubmitClient) reply(ext func([]byte)) (int, string, error) {
	for {
		line, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
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

// Pipelining reports whether the server offered PIPELINING.
func (c *SubmitClient) Pipelining() bool { return c.pipelining }

// Send submits one message in DATA form (see SMTPData) and returns the
// reply code after the data, or the first refusal before it (the
// transaction is then reset). A non-nil error means the connection is
// unusable.
func (c *SubmitClient) Send(from string, rcpts []string, data []byte) (int, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	fmt.Fprintf(c.w, "MAIL FROM:<%s>\r\n", from)
	for _, r := range rcpts {
		fmt.Fprintf(c.w, "RCPT TO:<%s>\r\n", r)
	}
	c.w.WriteString("DATA\r\n")
	if !c.pipelining {
		return c.sendLockstep(from, rcpts, data)
	}
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	bad, badText := 0, ""
	for range 1 + len(rcpts) {
		code, text, err := c.reply(nil)
		if err != nil {
			return 0, "", err
		}
		if code/100 != 2 && bad == 0 {
			bad, badText = code, text
		}
	}
	code, text, err := c.reply(nil)
	if err != nil {
		return 0, "", err
	}
	if code != 354 {
		if bad == 0 {
			bad, badText = code, text
		}
		return bad, badText, c.rset()
	}
	// DATA accepted although a recipient may have been refused: the
	// message goes to the others, as clients send it.
	if _, err := c.w.Write(data); err != nil {
		return 0, "", err
	}
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	return c.reply(nil)
}

// sendLockstep is Send without PIPELINING: the buffered commands are
// discarded and sent one at a time.
func (c *SubmitClient) sendLockstep(from string, rcpts []string, data []byte) (int, string, error) {
	c.w.Reset(c.conn)
	if code, text, err := c.cmd("MAIL FROM:<" + from + ">"); err != nil || code/100 != 2 {
		if err != nil {
			return 0, "", err
		}
		return code, text, c.rset()
	}
	for _, r := range rcpts {
		if code, text, err := c.cmd("RCPT TO:<" + r + ">"); err != nil || code/100 != 2 {
			if err != nil {
				return 0, "", err
			}
			return code, text, c.rset()
		}
	}
	code, text, err := c.cmd("DATA")
	if err != nil {
		return 0, "", err
	}
	if code != 354 {
		return code, text, c.rset()
	}
	if _, err := c.w.Write(data); err != nil {
		return 0, "", err
	}
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	return c.reply(nil)
}

func (c *SubmitClient) rset() error {
	_, _, err := c.cmd("RSET")
	return err
}

// Close sends QUIT and closes the connection.
func (c *SubmitClient) Close() error {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	c.w.WriteString("QUIT\r\n")
	c.w.Flush()
	return c.conn.Close()
}
