package bench

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Dialer opens client connections for the workloads.
type Dialer struct {
	// TLS, when set, makes connections implicit TLS (imaps, pop3s).
	TLS *tls.Config
	// BufSize is the read buffer size; 0 means 64 KiB. IDLE workloads
	// with thousands of connections use small buffers.
	BufSize int
	// Timeout bounds each read/write; 0 means one minute.
	Timeout time.Duration
}

func (d *Dialer) bufSize() int {
	if d == nil || d.BufSize <= 0 {
		return 64 << 10
	}
	return d.BufSize
}

func (d *Dialer) timeout() time.Duration {
	if d == nil || d.Timeout <= 0 {
		return time.Minute
	}
	return d.Timeout
}

// dial connects to addr, with TLS when configured.
func (d *Dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d != nil && d.TLS != nil {
		tc := tls.Client(c, d.TLS)
		_ = tc.SetDeadline(time.Now().Add(d.timeout()))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	}
	return c, nil
}

// Status is the result word of a tagged IMAP response.
type Status string

// IMAP results (RFC 9051 §7.1).
const (
	OK  Status = "OK"
	NO  Status = "NO"
	BAD Status = "BAD"
)

// maxLine bounds one logical IMAP response line (literals excluded).
const maxLine = 1 << 20

// IMAPClient is a lean IMAP client for load generation: commands are sent
// as text, responses scanned line by line, literal contents skipped.
// Not safe for concurrent use.
type IMAPClient struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	tag     uint64
	tagBuf  []byte
	resp    []byte
	// Caps holds the capabilities (upper case) from the greeting or
	// CAPABILITY, and again after LOGIN when the server sends them.
	Caps map[string]bool
	// LiteralBytes counts literal bytes received by the last command.
	LiteralBytes int64
}

// DialIMAP connects, reads the greeting and learns the capabilities.
func DialIMAP(ctx context.Context, d *Dialer, addr string) (*IMAPClient, error) {
	conn, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := NewIMAPClient(conn, d)
	if err := c.greeting(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewIMAPClient wraps an open connection whose greeting has not been read
// yet; call it through DialIMAP unless the connection is special.
func NewIMAPClient(conn net.Conn, d *Dialer) *IMAPClient {
	return &IMAPClient{
		conn:    conn,
		r:       bufio.NewReaderSize(conn, d.bufSize()),
		w:       bufio.NewWriterSize(conn, 4096),
		timeout: d.timeout(),
		Caps:    map[string]bool{},
	}
}

// Close closes the connection without LOGOUT.
func (c *IMAPClient) Close() error { return c.conn.Close() }

// Conn returns the underlying connection.
func (c *IMAPClient) Conn() net.Conn { return c.conn }

func (c *IMAPClient) greeting() error {
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	line, err := c.readResponse()
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	// RFC 9051 §7.1.1 (OK, PREAUTH), §7.1.5 (BYE).
	if !bytes.HasPrefix(line, []byte("* OK")) && !bytes.HasPrefix(line, []byte("* PREAUTH")) {
		return fmt.Errorf("greeting %q", trunc(line))
	}
	c.noteCaps(line)
	if len(c.Caps) == 0 {
		if st, text, err := c.Cmd("CAPABILITY", nil); err != nil || st != OK {
			return fmt.Errorf("capability: %s %s %v", st, trunc(text), err)
		}
	}
	return nil
}

// noteCaps records capabilities from "* CAPABILITY ..." or a
// "[CAPABILITY ...]" response code.
func (c *IMAPClient) noteCaps(line []byte) {
	var list []byte
	if i := bytes.Index(line, []byte("[CAPABILITY ")); i >= 0 {
		list = line[i+len("[CAPABILITY "):]
		if j := bytes.IndexByte(list, ']'); j >= 0 {
			list = list[:j]
		}
	} else if bytes.HasPrefix(line, []byte("* CAPABILITY ")) {
		list = line[len("* CAPABILITY "):]
	} else {
		return
	}
	clear(c.Caps)
	for _, f := range strings.Fields(string(list)) {
		c.Caps[strings.ToUpper(f)] = true
	}
}

func (c *IMAPClient) nextTag() []byte {
	c.tag++
	c.tagBuf = append(c.tagBuf[:0], 'a')
	c.tagBuf = strconv.AppendUint(c.tagBuf, c.tag, 10)
	return c.tagBuf
}

// Cmd sends one command and reads until its tagged response. onUntagged,
// when set, sees every untagged response (the slice is valid only during
// the call; literal contents are replaced by nothing, their size is added
// to LiteralBytes). It returns the status and the text after it.
func (c *IMAPClient) Cmd(cmd string, onUntagged func(resp []byte)) (Status, []byte, error) {
	tag := c.nextTag()
	c.w.Write(tag)
	c.w.WriteByte(' ')
	c.w.WriteString(cmd)
	c.w.WriteString("\r\n")
	if err := c.flush(); err != nil {
		return "", nil, err
	}
	return c.readTagged(tag, onUntagged)
}

// Append sends APPEND to mailbox with flags (e.g. `(\Seen)`, may be "")
// and the message, as a non-synchronizing literal when the server allows
// it (RFC 7888) and a synchronizing one otherwise (RFC 9051 §4.3).
func (c *IMAPClient) Append(mailbox, flags string, msg []byte) (Status, []byte, error) {
	return c.AppendFunc(mailbox, flags, msg, nil)
}

// AppendFunc is Append with onUntagged seeing every untagged response, as
// in Cmd: an APPEND to the selected mailbox may bring its EXISTS.
func (c *IMAPClient) AppendFunc(mailbox, flags string, msg []byte, onUntagged func(resp []byte)) (Status, []byte, error) {
	tag := c.nextTag()
	c.w.Write(tag)
	c.w.WriteString(" APPEND ")
	c.w.WriteString(mailbox)
	if flags != "" {
		c.w.WriteByte(' ')
		c.w.WriteString(flags)
	}
	nonSync := c.Caps["LITERAL+"] || (c.Caps["LITERAL-"] && len(msg) <= 4096)
	fmt.Fprintf(c.w, " {%d", len(msg))
	if nonSync {
		c.w.WriteByte('+')
	}
	c.w.WriteString("}\r\n")
	if !nonSync {
		if err := c.flush(); err != nil {
			return "", nil, err
		}
		// Wait for the continuation, or a refusal.
		_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
		for {
			line, err := c.readResponse()
			if err != nil {
				return "", nil, err
			}
			if bytes.HasPrefix(line, []byte("+")) {
				break
			}
			if st, text, ok := taggedStatus(line, tag); ok {
				return st, text, nil
			}
			c.noteCaps(line)
			if onUntagged != nil && bytes.HasPrefix(line, []byte("* ")) {
				onUntagged(line)
			}
		}
	}
	c.w.Write(msg)
	c.w.WriteString("\r\n")
	if err := c.flush(); err != nil {
		return "", nil, err
	}
	return c.readTagged(tag, onUntagged)
}

// NextTag returns the tag the next command will carry.
func (c *IMAPClient) NextTag() string { return "a" + strconv.FormatUint(c.tag+1, 10) }

// LastTag returns the tag of the last command sent.
func (c *IMAPClient) LastTag() string { return string(c.tagBuf) }

// Idle runs IDLE (RFC 2177) briefly: it waits for the continuation, then
// up to wait for the first untagged response, sends DONE and reads the
// tagged result. Every untagged response goes to onUntagged, as in Cmd.
func (c *IMAPClient) Idle(wait time.Duration, onUntagged func(resp []byte)) (Status, []byte, error) {
	tag := c.nextTag()
	c.w.Write(tag)
	c.w.WriteString(" IDLE\r\n")
	if err := c.flush(); err != nil {
		return "", nil, err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		line, err := c.readResponse()
		if err != nil {
			return "", nil, err
		}
		if bytes.HasPrefix(line, []byte("+")) {
			break
		}
		if st, text, ok := taggedStatus(line, tag); ok {
			return st, text, nil // refused
		}
		if onUntagged != nil && bytes.HasPrefix(line, []byte("* ")) {
			onUntagged(line)
		}
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	line, err := c.readResponse()
	switch {
	case err == nil:
		if st, text, ok := taggedStatus(line, tag); ok {
			return st, text, nil // the server ended IDLE itself
		}
		if onUntagged != nil && bytes.HasPrefix(line, []byte("* ")) {
			onUntagged(line)
		}
	case errors.Is(err, os.ErrDeadlineExceeded) && len(c.resp) == 0:
		// Nothing arrived while idling.
	default:
		// A response cut by the deadline is lost to the reader.
		return "", nil, err
	}
	c.w.WriteString("DONE\r\n")
	if err := c.flush(); err != nil {
		return "", nil, err
	}
	return c.readTagged(tag, onUntagged)
}

func (c *IMAPClient) flush() error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readTagged reads responses until the one tagged tag.
func (c *IMAPClient) readTagged(tag []byte, onUntagged func([]byte)) (Status, []byte, error) {
	c.LiteralBytes = 0
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		line, err := c.readResponse()
		if err != nil {
			return "", nil, err
		}
		if st, text, ok := taggedStatus(line, tag); ok {
			c.noteCaps(line)
			return st, text, nil
		}
		if bytes.HasPrefix(line, []byte("* BYE")) {
			// A BYE before a LOGOUT's tagged OK is normal (RFC 9051
			// §6.1.3); anywhere else the server is going away.
			if onUntagged != nil {
				onUntagged(line)
			}
			continue
		}
		if bytes.HasPrefix(line, []byte("* CAPABILITY ")) {
			c.noteCaps(line)
		}
		if onUntagged != nil && bytes.HasPrefix(line, []byte("* ")) {
			onUntagged(line)
		}
	}
}

// taggedStatus recognises "TAG OK text".
func taggedStatus(line, tag []byte) (Status, []byte, bool) {
	if len(line) <= len(tag) || !bytes.HasPrefix(line, tag) || line[len(tag)] != ' ' {
		return "", nil, false
	}
	rest := line[len(tag)+1:]
	word, text, _ := bytes.Cut(rest, []byte(" "))
	switch string(bytes.ToUpper(word)) {
	case "OK":
		return OK, text, true
	case "NO":
		return NO, text, true
	case "BAD":
		return BAD, text, true
	}
	return Status(word), text, true
}

// readResponse reads one logical response: lines joined across literals
// ("{n}\r\n" followed by n bytes), literal contents dropped, CRLF removed.
// The result is valid until the next call.
func (c *IMAPClient) readResponse() ([]byte, error) {
	c.resp = c.resp[:0]
	for {
		chunk, err := c.r.ReadSlice('\n')
		c.resp = append(c.resp, chunk...)
		if err == bufio.ErrBufferFull {
			if len(c.resp) > maxLine {
				return nil, fmt.Errorf("response line longer than %d bytes", maxLine)
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(c.resp) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		c.resp = bytes.TrimRight(c.resp, "\r\n")
		n, ok := literalSize(c.resp)
		if !ok {
			return c.resp, nil
		}
		if n > 1<<34 {
			return nil, fmt.Errorf("literal of %d bytes", n)
		}
		if _, err := c.r.Discard(int(n)); err != nil {
			return nil, fmt.Errorf("read literal: %w", err)
		}
		c.LiteralBytes += n
	}
}

// literalSize recognises a line ending in "{n}" or "~{n}" (RFC 3516) and
// returns n.
func literalSize(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 || i == len(line)-2 {
		return 0, false
	}
	digits := line[i+1 : len(line)-1]
	if len(digits) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// Login sends LOGIN with quoted user and password (RFC 9051 §6.2.3).
func (c *IMAPClient) Login(user, pass string) error {
	st, text, err := c.Cmd("LOGIN "+quote(user)+" "+quote(pass), nil)
	if err != nil {
		return err
	}
	if st != OK {
		return fmt.Errorf("login %s: %s %s", user, st, trunc(text))
	}
	return nil
}

// Logout sends LOGOUT and waits for the tagged OK (RFC 9051 §6.1.3).
func (c *IMAPClient) Logout() error {
	st, text, err := c.Cmd("LOGOUT", nil)
	if err != nil {
		return err
	}
	if st != OK {
		return fmt.Errorf("logout: %s %s", st, trunc(text))
	}
	return nil
}

// quote returns s as an IMAP quoted string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// untaggedNum parses "* 12 EXISTS" into 12 and "EXISTS".
func untaggedNum(line []byte) (uint32, []byte, bool) {
	if !bytes.HasPrefix(line, []byte("* ")) {
		return 0, nil, false
	}
	rest := line[2:]
	i := 0
	var n uint64
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		n = n*10 + uint64(rest[i]-'0')
		if n > 1<<32-1 {
			return 0, nil, false
		}
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ' ' {
		return 0, nil, false
	}
	word := rest[i+1:]
	if j := bytes.IndexByte(word, ' '); j >= 0 {
		word = word[:j]
	}
	return uint32(n), word, true
}

// fetchUID returns the UID item of a "* n FETCH (...)" response.
func fetchUID(line []byte) (uint32, bool) {
	off := 0
	for {
		i := bytes.Index(line[off:], []byte("UID "))
		if i < 0 {
			return 0, false
		}
		i += off
		if i > 0 && (line[i-1] == '(' || line[i-1] == ' ') {
			return parseUint32(line[i+4:])
		}
		off = i + 4
	}
}

// parseUint32 parses the leading digits of b.
func parseUint32(b []byte) (uint32, bool) {
	var n uint64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + uint64(b[i]-'0')
		if n > 1<<32-1 {
			return 0, false
		}
		i++
	}
	return uint32(n), i > 0
}

// respCode returns the argument of response code name in text, for
// example "APPENDUID" in "[APPENDUID 38505 3955] done" gives "38505 3955".
func respCode(text []byte, name string) ([]byte, bool) {
	i := bytes.Index(text, []byte("["+name))
	if i < 0 {
		return nil, false
	}
	rest := text[i+1+len(name):]
	j := bytes.IndexByte(rest, ']')
	if j < 0 {
		return nil, false
	}
	return bytes.TrimSpace(rest[:j]), true
}

// Compress sends COMPRESS DEFLATE (RFC 4978) and switches the connection
// to raw deflate both ways. It returns false when the server does not
// advertise COMPRESS=DEFLATE. The client's direction is written as
// stored deflate blocks: valid RFC 1951 data that costs the client no
// compressor state, which matters with thousands of connections.
func (c *IMAPClient) Compress() (bool, error) {
	if !c.Caps["COMPRESS=DEFLATE"] {
		return false, nil
	}
	st, text, err := c.Cmd("COMPRESS DEFLATE", nil)
	if err != nil {
		return false, err
	}
	if st != OK {
		return false, fmt.Errorf("compress: %s %s", st, trunc(text))
	}
	if c.r.Buffered() > 0 {
		return false, fmt.Errorf("compress: server sent data after OK")
	}
	size := c.r.Size()
	c.r = bufio.NewReaderSize(flate.NewReader(c.conn), size)
	c.w = bufio.NewWriterSize(&storedDeflate{w: c.conn}, 4096)
	return true, nil
}

// storedDeflate writes each Write as non-final stored deflate blocks
// (RFC 1951 §3.2.4) followed by an empty stored block, the marker a
// Z_SYNC_FLUSH writes: inflaters such as Go's compress/flate hand data on
// only at such a marker.
type storedDeflate struct {
	w   io.Writer
	buf []byte
}

// Write sends p as stored blocks and a sync marker in one write.
func (s *storedDeflate) Write(p []byte) (int, error) {
	s.buf = s.buf[:0]
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), 65535)]
		l := len(chunk)
		s.buf = append(s.buf, 0, byte(l), byte(l>>8), ^byte(l), ^byte(l>>8))
		s.buf = append(s.buf, chunk...)
		rest = rest[l:]
	}
	s.buf = append(s.buf, 0, 0, 0, 0xff, 0xff)
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
