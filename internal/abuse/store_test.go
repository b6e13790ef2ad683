package abuse

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/testenv"
)

// storeDeadline bounds every session of the store tests: a session that
// has no answer by then is stuck, not slow.
const storeDeadline = 90 * time.Second

// TestStoreSelectBurstAfterStart keeps item 1 of issue 11 fixed: right
// after a start (no statement of the read pool prepared yet), a burst of
// IMAP sessions that LOGIN and SELECT at once, with POP3 logins and LMTP
// deliveries beside them, must all be answered. They froze the server for
// good when each SELECT held a connection of the read pool and waited for
// another one to prepare its statement. It runs with the production pool
// (where it took a burst to freeze) and with a pool of one connection
// (where any such wait freezes at once).
func TestStoreSelectBurstAfterStart(t *testing.T) {
	t.Parallel()
	for _, pool := range []struct {
		name  string
		conns int
	}{{"production", -1}, {"one", 1}} {
		t.Run(pool.name, func(t *testing.T) {
			t.Parallel()
			e := testenv.Start(t, testenv.Options{ReadConns: pool.conns})
			const users = 4
			for i := range users {
				e.AddUser(fmt.Sprintf("u%d@%s", i, testenv.Domain), "secret password")
			}
			e.Restart() // a fresh start: nothing prepared

			const imapSessions = 40
			var wg sync.WaitGroup
			errs := make(chan error, imapSessions+2*users)
			start := make(chan struct{})
			for i := range imapSessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs <- storeIMAPLoginSelect(e.Addr("imap"), fmt.Sprintf("u%d@%s", i%users, testenv.Domain))
				}()
			}
			for i := range users {
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					errs <- storePOP3Stat(e.Addr("pop3"), fmt.Sprintf("u%d@%s", i, testenv.Domain))
				}()
				go func() {
					defer wg.Done()
					<-start
					errs <- storeLMTPDeliver(e.Addr("lmtp"), fmt.Sprintf("u%d@%s", i, testenv.Domain))
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// storeSession is a line-based client connection with the store tests'
// deadline.
type storeSession struct {
	c net.Conn
	r *bufio.Reader
}

func storeDial(addr string) (*storeSession, error) {
	c, err := net.DialTimeout("tcp", addr, storeDeadline)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(storeDeadline))
	return &storeSession{c: c, r: bufio.NewReader(c)}, nil
}

// until reads lines until one starts with prefix, returning them all.
func (s *storeSession) until(prefix string) (string, error) {
	var all strings.Builder
	for {
		l, err := s.r.ReadString('\n')
		all.WriteString(l)
		if err != nil {
			return all.String(), fmt.Errorf("waiting for %q: %w (got %q)", prefix, err, all.String())
		}
		if strings.HasPrefix(l, prefix) {
			return all.String(), nil
		}
	}
}

// reply reads an SMTP reply and returns its last line.
func (s *storeSession) reply() (string, error) {
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return l, err
		}
		if len(l) < 4 || l[3] != '-' {
			return l, nil
		}
	}
}

func storeIMAPLoginSelect(addr, user string) error {
	s, err := storeDial(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	if _, err := s.until("* OK"); err != nil {
		return fmt.Errorf("imap greeting: %w", err)
	}
	fmt.Fprintf(s.c, "a LOGIN %s \"secret password\"\r\nb SELECT INBOX\r\nc LOGOUT\r\n", user)
	out, err := s.until("c OK")
	if err != nil {
		return fmt.Errorf("imap %s: %w", user, err)
	}
	if !strings.Contains(out, "a OK") || !strings.Contains(out, "b OK") {
		return fmt.Errorf("imap %s: LOGIN and SELECT not both OK:\n%s", user, out)
	}
	return nil
}

func storePOP3Stat(addr, user string) error {
	s, err := storeDial(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	if _, err := s.until("+OK"); err != nil {
		return fmt.Errorf("pop3 greeting: %w", err)
	}
	for _, cmd := range []string{"USER " + user, "PASS secret password", "STAT", "QUIT"} {
		fmt.Fprintf(s.c, "%s\r\n", cmd)
		l, err := s.until("")
		if err != nil || !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("pop3 %s: %s: %q %v", user, cmd, l, err)
		}
	}
	return nil
}

func storeLMTPDeliver(addr, user string) error {
	s, err := storeDial(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	if _, err := s.until("220 "); err != nil {
		return fmt.Errorf("lmtp greeting: %w", err)
	}
	for _, step := range []struct{ cmd, want string }{
		{"LHLO test", "250 "},
		{"MAIL FROM:<bob@example.net>", "250 "},
		{"RCPT TO:<" + user + ">", "250 "},
		{"DATA", "354 "},
		{"Subject: burst\r\n\r\nhello\r\n.", "250 "},
		{"QUIT", "221 "},
	} {
		fmt.Fprintf(s.c, "%s\r\n", step.cmd)
		out, err := s.reply()
		if err != nil || !strings.HasPrefix(out, step.want) {
			return fmt.Errorf("lmtp %s: %s: %q %v", user, step.cmd, out, err)
		}
	}
	return nil
}
