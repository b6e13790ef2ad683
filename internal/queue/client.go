package queue

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Reply is an SMTP reply (RFC 5321 §4.2): the code, the enhanced status
// code when the server gave one (RFC 3463, "5.1.1"), and the text lines.
type Reply struct {
	Code     int
	Enhanced string
	Lines    []string
}

// Temporary reports a 4xx reply; Permanent a 5xx one.
func (r *Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx reply.
func (r *Reply) Permanent() bool { return r.Code >= 500 }

// String is the reply on one line, as a DSN's Diagnostic-Code shows it.
func (r *Reply) String() string {
	return strconv.Itoa(r.Code) + " " + strings.Join(r.Lines, " ")
}

// Status is the enhanced status code, or one made from the reply code
// (RFC 3463 §3: X.0.0).
func (r *Reply) Status() string {
	if r.Enhanced != "" {
		return r.Enhanced
	}
	return strconv.Itoa(r.Code/100) + ".0.0"
}

// ReplyError is a reply that failed a command.
type ReplyError struct {
	Cmd   string // "MAIL", "RCPT", "DATA", ...
	Reply *Reply
}

func (e *ReplyError) Error() string { return e.Cmd + ": " + e.Reply.String() }

// client is our SMTP client (RFC 5321) on one connection. It is not safe
// for concurrent use: one delivery goroutine owns it.
type client struct {
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	timeout time.Duration
	ext     map[string]string // EHLO keywords (upper case) -> parameters
	esmtp   bool
	tls     bool
	host    string      // the name we connected to, for logs and DSNs
	stop    func() bool // ends the context.AfterFunc that closes conn; may be nil
}

// maxReplyLines bounds a multi-line reply, maxLine a reply line.
const (
	maxReplyLines = 100
	maxLine       = 4096
)

func newClient(conn net.Conn, host string, timeout time.Duration) *client {
	return &client{conn: conn, br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 32<<10),
		timeout: timeout, host: host}
}

// deadline sets the connection's deadline for the next exchange:
// timeout, or sooner when ctx ends sooner.
func (c *client) deadline(ctx context.Context, d time.Duration) {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	c.conn.SetDeadline(t)
}

// readReply reads one (possibly multi-line) reply.
func (c *client) readReply() (*Reply, error) {
	r := &Reply{}
	for {
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("reply line too long")
		}
		if err != nil {
			return nil, err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if len(s) < 3 {
			return nil, fmt.Errorf("malformed reply %q", s)
		}
		code, err := strconv.Atoi(s[:3])
		if err != nil || code < 200 || code > 599 || (r.Code != 0 && code != r.Code) {
			return nil, fmt.Errorf("malformed reply %q", s)
		}
		r.Code = code
		text := ""
		last := true
		if len(s) > 3 {
			switch s[3] {
			case '-':
				last = false
			case ' ':
			default:
				return nil, fmt.Errorf("malformed reply %q", s)
			}
			text = s[4:]
		}
		if len(r.Lines) == 0 {
			// RFC 2034 §4: the enhanced code leads the text.
			if f := strings.SplitN(text, " ", 2); len(f) > 0 && isEnhanced(f[0], code) {
				r.Enhanced = f[0]
			}
		}
		if r.Enhanced != "" {
			text = strings.TrimPrefix(strings.TrimPrefix(text, r.Enhanced), " ")
		}
		r.Lines = append(r.Lines, text)
		if last {
			return r, nil
		}
		if len(r.Lines) > maxReplyLines {
			return nil, errors.New("reply has too many lines")
		}
	}
}

// isEnhanced reports whether s is an enhanced status code whose class
// matches the reply code (RFC 3463 §2).
func isEnhanced(s string, code int) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || p[0] != strconv.Itoa(code/100) {
		return false
	}
	for _, n := range p[1:] {
		if n == "" || len(n) > 3 || strings.Trim(n, "0123456789") != "" {
			return false
		}
	}
	return true
}

// cmd sends one command line and reads its reply.
func (c *client) cmd(ctx context.Context, line string) (*Reply, error) {
	c.deadline(ctx, c.timeout)
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	return c.readReply()
}

// greeting reads the server's greeting (RFC 5321 §4.3.1).
func (c *client) greeting(ctx context.Context) (*Reply, error) {
	// RFC 5321 §4.5.3.2.1: wait 5 minutes for the greeting.
	c.deadline(ctx, max(c.timeout, 5*time.Minute))
	return c.readReply()
}

// hello sends EHLO, or HELO when EHLO is refused (RFC 5321 §3.2).
func (c *client) hello(ctx context.Context, name string) error {
	r, err := c.cmd(ctx, "EHLO "+name)
	if err != nil {
		return err
	}
	if r.Code == 250 {
		c.esmtp = true
		c.ext = map[string]string{}
		for _, l := range r.Lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if r.Code >= 500 && r.Code != 554 && r.Code != 521 {
		r, err = c.cmd(ctx, "HELO "+name)
		if err != nil {
			return err
		}
		if r.Code == 250 {
			c.esmtp, c.ext = false, map[string]string{}
			return nil
		}
	}
	return &ReplyError{Cmd: "EHLO", Reply: r}
}

// has reports whether the server announced an extension.
func (c *client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// maxSize is the server's SIZE limit (RFC 1870), 0 when it gave none.
func (c *client) maxSize() int64 {
	v, ok := c.ext["SIZE"]
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// startTLS runs STARTTLS (RFC 3207) and the handshake; the caller says
// EHLO again.
func (c *client) startTLS(ctx context.Context, cfg *tls.Config) error {
	r, err := c.cmd(ctx, "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return &ReplyError{Cmd: "STARTTLS", Reply: r}
	}
	tc := tls.Client(c.conn, cfg)
	c.deadline(ctx, c.timeout)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	c.conn, c.tls = tc, true
	c.br.Reset(tc)
	c.bw.Reset(tc)
	c.ext = nil
	return nil
}

// auth authenticates with PLAIN (RFC 4616) or LOGIN, whichever the server
// offers, PLAIN first. The caller makes sure the connection is encrypted.
func (c *client) auth(ctx context.Context, user, pass string) error {
	mechs := strings.Fields(strings.ToUpper(c.ext["AUTH"]))
	has := func(m string) bool {
		for _, x := range mechs {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		r, err := c.cmd(ctx, "AUTH PLAIN "+ir)
		if err != nil {
			return err
		}
		if r.Code != 235 {
			return &ReplyError{Cmd: "AUTH", Reply: r}
		}
		return nil
	case has("LOGIN"):
		r, err := c.cmd(ctx, "AUTH LOGIN")
		for _, s := range []string{user, pass} {
			if err != nil {
				return err
			}
			if r.Code != 334 {
				return &ReplyError{Cmd: "AUTH", Reply: r}
			}
			r, err = c.cmd(ctx, base64.StdEncoding.EncodeToString([]byte(s)))
		}
		if err != nil {
			return err
		}
		if r.Code != 235 {
			return &ReplyError{Cmd: "AUTH", Reply: r}
		}
		return nil
	}
	return fmt.Errorf("the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers %q)", c.ext["AUTH"])
}

// envelope is one message transaction.
type envelope struct {
	from     string
	rcpts    []string
	size     int64
	eightBit bool // BODY=8BITMIME (RFC 6152)
	smtputf8 bool // SMTPUTF8 (RFC 6531 §3.4)
}

// txResult is the outcome of one transaction: the reply to each RCPT
// (nil when not sent), and the final reply for the accepted ones (nil
// when none was accepted).
type txResult struct {
	mail  *Reply
	rcpts []*Reply
	data  *Reply
}

// send runs one transaction: MAIL, RCPT for each recipient and DATA,
// pipelined when the server offers PIPELINING (RFC 2920), then the body
// (dot-stuffed, RFC 5321 §4.5.2). A protocol or network error means the
// connection is unusable; replies, good or bad, are in the result. After
// a refused transaction the caller sends RSET before the next.
func (c *client) send(ctx context.Context, env *envelope, body io.Reader) (*txResult, error) {
	mail := "MAIL FROM:<" + env.from + ">"
	if c.has("SIZE") && env.size > 0 {
		mail += " SIZE=" + strconv.FormatInt(env.size, 10)
	}
	if env.eightBit && c.has("8BITMIME") {
		mail += " BODY=8BITMIME"
	}
	if env.smtputf8 && c.has("SMTPUTF8") {
		mail += " SMTPUTF8"
	}
	res := &txResult{rcpts: make([]*Reply, len(env.rcpts))}
	c.deadline(ctx, c.timeout)
	if c.has("PIPELINING") {
		// RFC 2920 §3.1: MAIL, the RCPTs and DATA in one go.
		c.bw.WriteString(mail + "\r\n")
		for _, r := range env.rcpts {
			c.bw.WriteString("RCPT TO:<" + r + ">\r\n")
		}
		c.bw.WriteString("DATA\r\n")
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
		var err error
		if res.mail, err = c.readReply(); err != nil {
			return nil, err
		}
		accepted := 0
		for i := range env.rcpts {
			if res.rcpts[i], err = c.readReply(); err != nil {
				return nil, err
			}
			if res.rcpts[i].Code/100 == 2 {
				accepted++
			}
		}
		data, err := c.readReply()
		if err != nil {
			return nil, err
		}
		if res.mail.Code/100 != 2 || accepted == 0 {
			if data.Code == 354 {
				// RFC 2920 §3.1: the server went on to DATA although
				// nothing can be delivered; end it empty.
				if _, err := c.cmd(ctx, "."); err != nil {
					return nil, err
				}
			}
			res.rcpts = refusedBy(res.mail, res.rcpts)
			return res, nil
		}
		if data.Code != 354 {
			res.data = data
			return res, nil
		}
	} else {
		var err error
		if res.mail, err = c.cmd(ctx, mail); err != nil {
			return nil, err
		}
		if res.mail.Code/100 != 2 {
			res.rcpts = refusedBy(res.mail, res.rcpts)
			return res, nil
		}
		accepted := 0
		for i, r := range env.rcpts {
			if res.rcpts[i], err = c.cmd(ctx, "RCPT TO:<"+r+">"); err != nil {
				return nil, err
			}
			if res.rcpts[i].Code/100 == 2 {
				accepted++
			}
		}
		if accepted == 0 {
			return res, nil
		}
		data, err := c.cmd(ctx, "DATA")
		if err != nil {
			return nil, err
		}
		if data.Code != 354 {
			res.data = data
			return res, nil
		}
	}
	if err := c.writeData(ctx, body); err != nil {
		return nil, err
	}
	// RFC 5321 §4.5.3.2.6: wait 10 minutes for the reply to the final dot.
	c.deadline(ctx, max(c.timeout, 10*time.Minute))
	var err error
	if res.data, err = c.readReply(); err != nil {
		return nil, err
	}
	return res, nil
}

// refusedBy gives every recipient the refusal of MAIL.
func refusedBy(mail *Reply, rcpts []*Reply) []*Reply {
	if mail.Code/100 == 2 {
		return rcpts
	}
	for i := range rcpts {
		rcpts[i] = mail
	}
	return rcpts
}

// writeData sends the body dot-stuffed and ends it with CRLF.CRLF. The
// body's lines end in CRLF already (it was stored that way); a body that
// does not end with one gets it.
func (c *client) writeData(ctx context.Context, body io.Reader) error {
	br := bufio.NewReaderSize(body, 32<<10)
	bol, last := true, byte('\n')
	for {
		c.deadline(ctx, c.timeout)
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if bol && chunk[0] == '.' {
				c.bw.WriteByte('.')
			}
			if _, werr := c.bw.Write(chunk); werr != nil {
				return werr
			}
			last = chunk[len(chunk)-1]
			bol = last == '\n'
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("read body: %w", err)
		}
	}
	end := ".\r\n"
	switch last {
	case '\n':
	case '\r':
		end = "\n.\r\n"
	default:
		end = "\r\n.\r\n"
	}
	if _, err := c.bw.WriteString(end); err != nil {
		return err
	}
	return c.bw.Flush()
}

// reset sends RSET (RFC 5321 §4.1.1.5).
func (c *client) reset(ctx context.Context) error {
	r, err := c.cmd(ctx, "RSET")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return &ReplyError{Cmd: "RSET", Reply: r}
	}
	return nil
}

// quit says QUIT and closes the connection.
func (c *client) quit(ctx context.Context) {
	c.deadline(ctx, 10*time.Second)
	c.bw.WriteString("QUIT\r\n")
	if c.bw.Flush() == nil {
		c.readReply()
	}
	c.close()
}

func (c *client) close() {
	if c.stop != nil {
		c.stop()
	}
	c.conn.Close()
}
