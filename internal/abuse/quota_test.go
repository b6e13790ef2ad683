package abuse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// quotaIMAP is a raw IMAP session usable from any goroutine: its methods
// return errors instead of failing the test.
type quotaIMAP struct {
	c net.Conn
	r *bufio.Reader
	n int
}

func quotaLogin(env *testenv.Env, user, password string) (*quotaIMAP, error) {
	c, err := net.Dial("tcp", env.Addr("imap"))
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	s := &quotaIMAP{c: c, r: bufio.NewReader(c)}
	if _, err := s.r.ReadString('\n'); err != nil {
		c.Close()
		return nil, err
	}
	if last, err := s.do(fmt.Sprintf("LOGIN %s %q", user, password)); err != nil || !strings.Contains(last, " OK ") {
		c.Close()
		return nil, fmt.Errorf("login: %q %v", last, err)
	}
	return s, nil
}

// do sends a command and returns its tagged response line.
func (s *quotaIMAP) do(cmd string) (string, error) {
	s.n++
	tag := fmt.Sprintf("q%d", s.n)
	if _, err := io.WriteString(s.c, tag+" "+cmd+"\r\n"); err != nil {
		return "", err
	}
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
}

// TestQuotaConcurrentAppends (issue 14): sessions appending at the same
// time never take an account past its quota together, since the store
// checks it inside the write; every APPEND that could fit went in, the
// others got NO [OVERQUOTA], and the usage is exact.
func TestQuotaConcurrentAppends(t *testing.T) {
	t.Parallel()
	const limit, size = 20 << 10, 1000
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Limits.Quota = limit }})
	env.AddUser("alice@example.org", "secret password")
	msg := "Subject: race\r\n\r\n" + strings.Repeat("r", size-19) + "\r\n"
	if len(msg) != size {
		t.Fatalf("message of %d bytes", len(msg))
	}
	const sessions, each = 5, 8
	var mu sync.Mutex
	ok, refused := 0, 0
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := quotaLogin(env, "alice@example.org", "secret password")
			if err != nil {
				errs <- err
				return
			}
			defer s.c.Close()
			for range each {
				last, err := s.do(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				switch {
				case strings.Contains(last, " OK "):
					ok++
				case strings.Contains(last, " NO [OVERQUOTA] "):
					refused++
				default:
					errs <- fmt.Errorf("APPEND: %q", last)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if want := limit / size; ok != want || refused != sessions*each-want {
		t.Fatalf("%d APPENDs went in and %d were refused; want %d and %d", ok, refused, want, sessions*each-want)
	}
	a, err := env.Store().Account(context.Background(), "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	u, err := env.Store().Usage(context.Background(), a.ID)
	if err != nil || u.Bytes != int64(ok*size) || u.Messages != int64(ok) {
		t.Fatalf("usage %+v %v, want %d bytes in %d messages", u, err, ok*size, ok)
	}
	if probs, err := env.Store().Check(context.Background()); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}

// TestQuotaDeliveryFlood (issue 14): LMTP sessions delivering to one
// account at the same time. Each message accepted at RCPT is stored
// (never refused after DATA), the account passes its limit by at most one
// message per session that raced, the next RCPT gets 452 4.2.2, and the
// usage is exact.
func TestQuotaDeliveryFlood(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	bob := env.AddUser("bob@example.org", "secret password")
	const limit = 10
	if err := env.Store().SetQuota(context.Background(), bob.ID, store.Quota{Bytes: store.QuotaDefault, Messages: limit}); err != nil {
		t.Fatal(err)
	}
	const sessions, each = 6, 5
	var mu sync.Mutex
	accepted := 0
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", env.Addr("lmtp"))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Minute))
			r := bufio.NewReader(c)
			reply := func(cmd string) (string, error) {
				if cmd != "" {
					if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
						return "", err
					}
				}
				for {
					l, err := r.ReadString('\n')
					if err != nil || len(l) < 4 || l[3] != '-' {
						return l, err
					}
				}
			}
			if _, err := reply(""); err != nil {
				errs <- err
				return
			}
			if _, err := reply("LHLO flood.test"); err != nil {
				errs <- err
				return
			}
			for j := range each {
				reply("MAIL FROM:<flood@example.net>")
				l, err := reply("RCPT TO:<bob@example.org>")
				if err != nil {
					errs <- err
					return
				}
				if strings.HasPrefix(l, "452 4.2.2 ") {
					reply("RSET")
					continue
				}
				if !strings.HasPrefix(l, "250 ") {
					errs <- fmt.Errorf("RCPT: %q", l)
					return
				}
				reply("DATA")
				if l, err := reply(fmt.Sprintf("Subject: flood %d-%d\r\n\r\nx\r\n.", i, j)); err != nil || !strings.HasPrefix(l, "250 ") {
					errs <- fmt.Errorf("a message accepted at RCPT was refused after DATA: %q %v", l, err)
					return
				}
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stored := len(env.Messages("bob@example.org", "INBOX"))
	if stored != accepted || accepted < limit || accepted > limit+sessions-1 {
		t.Fatalf("%d messages accepted, %d stored; want from %d to %d", accepted, stored, limit, limit+sessions-1)
	}
	u, err := env.Store().Usage(context.Background(), bob.ID)
	if err != nil || u.Messages != int64(stored) {
		t.Fatalf("usage %+v %v, want %d messages", u, err, stored)
	}
	if l := quotaLMTPRcpt(t, env, "bob@example.org"); !strings.HasPrefix(l, "452 4.2.2 ") {
		t.Fatalf("RCPT after the flood: %q", l)
	}
	if probs, err := env.Store().Check(context.Background()); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}

// quotaLMTPRcpt returns the LMTP reply to RCPT TO for rcpt.
func quotaLMTPRcpt(t *testing.T, env *testenv.Env, rcpt string) string {
	t.Helper()
	c := opsDial(t, env, "lmtp")
	defer c.c.Close()
	c.send("LHLO quota.test")
	for l := c.line(); !strings.HasPrefix(l, "250 "); l = c.line() {
	}
	c.send("MAIL FROM:<sender@example.net>")
	return c.send("RCPT TO:<" + rcpt + ">")
}
