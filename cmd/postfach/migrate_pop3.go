package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/message"
)

// pop3 copies a POP3 maildrop into INBOX, keeping each message's UIDL
// (RFC 1939 §7), so that POP3 clients that move to postfach do not
// download everything again. POP3 has no flags and no internal date: the
// messages come in unseen, dated by their Date header (the time of the
// move when they have none that parses).
func (m *migrator) pop3(addr string, tc *tls.Config, user, password string) error {
	d := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	p := &pop3Client{c: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if _, err := p.status(); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if _, err := p.cmd("USER " + user); err != nil {
		return fmt.Errorf("log in at %s: %w", addr, err)
	}
	if _, err := p.cmd("PASS " + password); err != nil {
		return fmt.Errorf("log in at %s: %w", addr, err)
	}
	if _, err := p.cmd("UIDL"); err != nil {
		return fmt.Errorf("UIDL: %w", err)
	}
	lines, err := p.multiline()
	if err != nil {
		return fmt.Errorf("UIDL: %w", err)
	}
	type item struct {
		n    int
		uidl string
	}
	var todo []item
	for _, l := range lines {
		f := strings.Fields(string(l))
		if len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || m.state.UIDLs[f[1]] {
			continue
		}
		todo = append(todo, item{n, f[1]})
	}
	for start := 0; start < len(todo); start += migrateChunk {
		end := min(start+migrateChunk, len(todo))
		ch, err := newChunk()
		if err != nil {
			return err
		}
		for _, it := range todo[start:end] {
			if _, err := p.cmd("RETR " + strconv.Itoa(it.n)); err != nil {
				return fmt.Errorf("RETR %d: %w", it.n, err)
			}
			body, err := p.multiline()
			if err != nil {
				return fmt.Errorf("RETR %d: %w", it.n, err)
			}
			raw := bytes.Join(body, nil)
			if err := ch.add(stagedMsg{body: raw, date: headerDate(raw), uidl: it.uidl}); err != nil {
				return err
			}
		}
		fmt.Fprintf(m.e.stderr, "\rINBOX: %d/%d", end, len(todo))
		batch := todo[start:end]
		if err := m.importChunk("INBOX", ch, func() {
			for _, it := range batch {
				m.state.UIDLs[it.uidl] = true
			}
		}); err != nil {
			return err
		}
	}
	p.cmd("QUIT")
	return nil
}

// pop3Client is the little of a POP3 client that migrate needs.
type pop3Client struct {
	c net.Conn
	r *bufio.Reader
}

func (p *pop3Client) cmd(line string) (string, error) {
	p.c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := io.WriteString(p.c, line+"\r\n"); err != nil {
		return "", err
	}
	return p.status()
}

func (p *pop3Client) status() (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "+OK") {
		return "", errors.New(strings.TrimSpace(strings.TrimPrefix(line, "-ERR")))
	}
	return line, nil
}

// multiline reads a multi-line answer up to the lone ".", lines with
// their CRLF, dot-stuffing undone (RFC 1939 §3).
func (p *pop3Client) multiline() ([][]byte, error) {
	var out [][]byte
	for {
		line, err := p.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			more := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = p.r.ReadSlice('\n')
				more = append(more, line...)
			}
			line = more
		}
		if err != nil {
			return nil, err
		}
		if string(line) == ".\r\n" || string(line) == ".\n" {
			return out, nil
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		out = append(out, append([]byte(nil), line...))
	}
}

// headerDate returns the Date header of a message's header section, or
// now.
func headerDate(raw []byte) time.Time {
	hdr := raw
	if i := bytes.Index(raw, []byte("\n\r\n")); i >= 0 {
		hdr = raw[:i]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		hdr = raw[:i]
	}
	for _, line := range bytes.Split(hdr, []byte("\n")) {
		if len(line) > 5 && strings.EqualFold(string(line[:5]), "date:") {
			if t, ok := message.ParseDate(strings.TrimSpace(string(line[5:]))); ok {
				return t
			}
		}
	}
	return time.Now()
}
