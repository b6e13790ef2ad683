package smtpserver_test

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

// TestWholeServer delivers through the SMTP and LMTP listeners of the whole
// server (testenv) onto the real store, several sessions at once, and
// reads the messages back. testenv runs the store with a read pool of one
// connection, so a delivery path that waits for a second read connection
// while it holds one hangs here (issue 11).
func TestWholeServer(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	e.AddUser("alice@"+testenv.Domain, "secret password")
	e.AddUser("bob@"+testenv.Domain, "secret password")

	const perProto = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*perProto)
	for i := range perProto {
		for _, proto := range []string{"smtp", "lmtp"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- wholeDeliver(e.Addr(proto), proto, fmt.Sprintf("%s %d", proto, i))
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{"alice", "bob"} {
		if got := len(e.Messages(user+"@"+testenv.Domain, "INBOX")); got != 2*perProto {
			t.Errorf("%s has %d messages, want %d", user, got, 2*perProto)
		}
	}
}

// wholeDeliver sends one message to alice and bob.
func wholeDeliver(addr, proto, subject string) error {
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	reply := func() (string, error) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return l, err
			}
			if len(l) < 4 || l[3] != '-' {
				return l, nil
			}
		}
	}
	hello := "EHLO client.example"
	if proto == "lmtp" {
		hello = "LHLO client.example"
	}
	steps := []struct{ cmd, want string }{
		{"", "220 "},
		{hello, "250 "},
		{"MAIL FROM:<carol@example.com>", "250 "},
		{"RCPT TO:<alice@" + testenv.Domain + ">", "250 "},
		{"RCPT TO:<bob@" + testenv.Domain + ">", "250 "},
		{"DATA", "354 "},
		{"Subject: " + subject + "\r\n\r\nhello\r\n.", "250 "},
	}
	if proto == "lmtp" {
		steps = append(steps, struct{ cmd, want string }{"", "250 "}) // one reply per recipient
	}
	steps = append(steps, struct{ cmd, want string }{"QUIT", "221 "})
	for _, st := range steps {
		if st.cmd != "" {
			fmt.Fprintf(c, "%s\r\n", st.cmd)
		}
		l, err := reply()
		if err != nil || !strings.HasPrefix(l, st.want) {
			return fmt.Errorf("%s %q: %q %v", proto, st.cmd, l, err)
		}
	}
	return nil
}
