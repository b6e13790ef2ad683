package abuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
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

// storeStuck is a store whose UIDs (the read behind SELECT) never returns
// until released, and ignores its context: a store stuck on a hung disk,
// or the read pool's freeze of issue 11.
type storeStuck struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *storeStuck) UIDs(ctx context.Context, acct store.AccountID, id store.MailboxID) (mail.UIDSet, mail.ModSeq, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return s.Store.UIDs(ctx, acct, id)
}

// TestStoreShutdownWithStuckStore keeps the other half of item 1 fixed: a
// stop is bounded whatever the store does. A session is stuck in the store
// for good; Shutdown must still cut it off once its context is done and
// return (with an error saying what was left), where it used to wait for
// that session forever, and SIGTERM with it.
func TestStoreShutdownWithStuckStore(t *testing.T) {
	t.Parallel()
	stuck := &storeStuck{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(stuck.release) })
	e := testenv.Start(t, testenv.Options{WrapStore: func(st store.Store) store.Store {
		stuck.Store = st
		return stuck
	}})
	e.AddUser("alice@"+testenv.Domain, "secret password")

	s, err := storeDial(e.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.c.Close()
	if _, err := s.until("* OK"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(s.c, "a LOGIN alice@%s \"secret password\"\r\n", testenv.Domain)
	if _, err := s.until("a OK"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(s.c, "b SELECT INBOX\r\n")
	select {
	case <-stuck.entered:
	case <-time.After(storeDeadline):
		t.Fatal("SELECT never reached the store")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the grace
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Shutdown reported success with a session stuck in the store")
		}
	case <-time.After(storeDeadline):
		t.Fatal("Shutdown did not return with a session stuck in the store")
	}
	// The stuck session was cut off.
	if out, err := s.until("b OK"); err == nil {
		t.Fatalf("the stuck SELECT was answered: %q", out)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the stuck session is still open after Shutdown returned: %v", err)
	}
	if logs := e.Logs(); !strings.Contains(logs, "connection cut off at shutdown") {
		t.Errorf("no log line about the connection cut off:\n%s", logs)
	}
}
