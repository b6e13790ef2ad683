package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// POP3Client is a lean POP3 client (RFC 1939) for load generation.
// Not safe for concurrent use.
type POP3Client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	// Caps holds the CAPA keywords (upper case, first word of each line,
	// RFC 2449 §5).
	Caps map[string]bool
}

// DialPOP3 connects, reads the greeting and asks CAPA.
func DialPOP3(ctx context.Context, d *Dialer, addr string) (*POP3Client, error) {
	conn, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &POP3Client{conn: conn, r: bufio.NewReaderSize(conn, d.bufSize()), w: bufio.NewWriterSize(conn, 16<<10), timeout: d.timeout(), Caps: map[string]bool{}}
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	ok, text, err := c.status()
	if err != nil || !ok {
		conn.Close()
		return nil, fmt.Errorf("pop3 greeting: %s %v", text, err)
	}
	if err := c.send("CAPA"); err != nil {
		conn.Close()
		return nil, err
	}
	if ok, _, err := c.status(); err == nil && ok {
		if _, _, err := c.readMulti(func(line []byte) {
			if f := strings.Fields(string(line)); len(f) > 0 {
				c.Caps[strings.ToUpper(f[0])] = true
			}
		}); err != nil {
			conn.Close()
			return nil, err
		}
	} else if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection without QUIT.
func (c *POP3Client) Close() error { return c.conn.Close() }

func (c *POP3Client) send(cmd string) error {
	c.w.WriteString(cmd)
	c.w.WriteString("\r\n")
	return c.w.Flush()
}

// status reads a "+OK ..." or "-ERR ..." line.
func (c *POP3Client) status() (bool, string, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return false, "", fmt.Errorf("read status: %w", err)
	}
	switch {
	case bytes.HasPrefix(line, []byte("+OK")):
		return true, string(bytes.TrimSpace(line[3:])), nil
	case bytes.HasPrefix(line, []byte("-ERR")):
		return false, string(bytes.TrimSpace(line[4:])), nil
	}
	return false, "", fmt.Errorf("malformed status %q", trunc(line))
}

// readMulti reads a multi-line response body up to the "." line (RFC 1939
// §3) and returns its line count and byte count (as sent, with CRLF).
// each, when set, sees every line (dot-stuffing not removed).
func (c *POP3Client) readMulti(each func([]byte)) (int, int64, error) {
	var lines int
	var n int64
	atStart := true
	for {
		chunk, err := c.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return lines, n, fmt.Errorf("read multi-line: %w", err)
		}
		if atStart && err == nil && (string(chunk) == ".\r\n" || string(chunk) == ".\n") {
			return lines, n, nil
		}
		n += int64(len(chunk))
		if err == nil {
			lines++
			if each != nil {
				each(bytes.TrimRight(chunk, "\r\n"))
			}
		}
		atStart = err == nil
	}
}

// Cmd sends a single-line command and reads its status.
func (c *POP3Client) Cmd(cmd string) (bool, string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	if err := c.send(cmd); err != nil {
		return false, "", err
	}
	return c.status()
}

// Login authenticates with USER and PASS (RFC 1939 §7).
func (c *POP3Client) Login(user, pass string) error {
	if ok, text, err := c.Cmd("USER " + user); err != nil || !ok {
		return fmt.Errorf("user: %s %v", text, err)
	}
	if ok, text, err := c.Cmd("PASS " + pass); err != nil || !ok {
		return fmt.Errorf("pass: %s %v", text, err)
	}
	return nil
}

// Multi sends a command with a multi-line answer and reads it all.
func (c *POP3Client) Multi(cmd string, each func([]byte)) (int, int64, error) {
	ok, text, err := c.Cmd(cmd)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, fmt.Errorf("%s: -ERR %s", cmd, text)
	}
	return c.readMulti(each)
}

// MultiPipelined sends cmds with at most window of them outstanding
// (RFC 2449 §6.6 PIPELINING) and reads each multi-line answer. It
// returns the total bytes received.
func (c *POP3Client) MultiPipelined(cmds []string, window int) (int64, error) {
	window = max(window, 1)
	var total int64
	sent := 0
	for done := 0; done < len(cmds); done++ {
		for sent < len(cmds) && sent-done < window {
			c.w.WriteString(cmds[sent])
			c.w.WriteString("\r\n")
			sent++
		}
		_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
		if err := c.w.Flush(); err != nil {
			return total, err
		}
		ok, text, err := c.status()
		if err != nil {
			return total, err
		}
		if !ok {
			return total, fmt.Errorf("%s: -ERR %s", cmds[done], text)
		}
		_, n, err := c.readMulti(nil)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
