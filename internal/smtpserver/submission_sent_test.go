package smtpserver_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/testenv"
)

// TestSubmissionSentOnceGoIMAP: go-imap v2's client APPENDs to Sent the
// message it has just submitted. The server keeps its own copy: APPEND
// answers with that copy's UID, and another session selected on Sent
// sees one EXISTS for it (at the submission) and then only its flags
// change, no EXISTS for a message that was not added. A MULTIAPPEND of a
// new message and the submitted one adds the new one only, and its
// APPENDUID lists the UIDs in the order of the messages.
func TestSubmissionSentOnceGoIMAP(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	const password = "go-imap password"
	env.AddUser("alice@"+testenv.Domain, password)
	env.AddUser("bob@"+testenv.Domain, password)

	var mu sync.Mutex
	var exists []uint32
	var flags []string
	observer, err := imapclient.DialTLS(env.Addr("imaps"), &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					mu.Lock()
					exists = append(exists, *d.NumMessages)
					mu.Unlock()
				}
			},
			Fetch: func(m *imapclient.FetchMessageData) {
				for {
					item := m.Next()
					if item == nil {
						return
					}
					if f, ok := item.(imapclient.FetchItemDataFlags); ok {
						mu.Lock()
						flags = append(flags, fmt.Sprint(f.Flags))
						mu.Unlock()
					}
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	if err := observer.Login("alice@example.org", password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := observer.Select("Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// seen sends NOOP until the observer has had the untagged responses
	// done asks for (the change events reach its session a moment after
	// the other session's command completed), and returns them.
	seen := func(done func(e []uint32, f []string) bool) ([]uint32, []string) {
		t.Helper()
		var e []uint32
		var f []string
		for range 500 {
			if err := observer.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			e, f = append(e, exists...), append(f, flags...)
			exists, flags = nil, nil
			mu.Unlock()
			if done(e, f) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return e, f
	}

	msg := "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: once\r\nMessage-ID: <once@client.example>\r\n" +
		"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nsent once\r\n"
	s := subDial(t, env.Addr("submissions"), true)
	s.login("alice@example.org", password)
	s.do("MAIL FROM:<alice@example.org>", "250 ")
	s.do("RCPT TO:<bob@example.org>", "250 ")
	s.do("DATA", "354 ")
	s.send(strings.TrimSuffix(msg, "\r\n") + "\r\n.")
	s.expect("250 ")
	if e, _ := seen(func(e []uint32, _ []string) bool { return len(e) > 0 }); len(e) != 1 || e[0] != 1 {
		t.Fatalf("observer saw EXISTS %v after the submission, want [1]", e)
	}

	c, err := imapclient.DialTLS(env.Addr("imaps"), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", password).Wait(); err != nil {
		t.Fatal(err)
	}
	ac := c.Append("Sent", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "$Saved"}})
	if _, err := ac.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	ad, err := ac.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID %d %d, want the server's copy, UID 1", ad.UIDValidity, ad.UID)
	}
	e, f := seen(func(_ []uint32, f []string) bool { return len(f) > 0 })
	if len(e) != 0 || len(f) != 1 || !strings.Contains(f[0], "$Saved") {
		t.Errorf("observer saw EXISTS %v and FLAGS %v after the client's APPEND, want no EXISTS and the flags", e, f)
	}

	// MULTIAPPEND (RFC 3502) by hand: go-imap has none.
	raw, err := net.Dial("tcp", env.Addr("imap"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(raw)
	expect := func(tag string) string {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if strings.HasPrefix(l, tag+" ") {
				return l
			}
		}
	}
	expect("*")
	fmt.Fprintf(raw, "a LOGIN alice@example.org \"%s\"\r\n", password)
	expect("a")
	other := strings.Replace(msg, "<once@client.example>", "<other@client.example>", 1)
	fmt.Fprintf(raw, "b APPEND Sent {%d+}\r\n%s (\\Flagged) {%d+}\r\n%s\r\n", len(other), other, len(msg), msg)
	l := expect("b")
	if !strings.HasPrefix(l, "b OK [APPENDUID ") || !strings.Contains(l, " 2,1]") {
		t.Errorf("MULTIAPPEND: %q, want APPENDUID with 2,1", l)
	}
	e, f = seen(func(e []uint32, f []string) bool { return len(e) > 0 && len(f) > 0 })
	if len(e) != 1 || e[0] != 2 || len(f) != 1 || !strings.Contains(f[0], `\Flagged`) {
		t.Errorf("observer saw EXISTS %v and FLAGS %v after the MULTIAPPEND, want [2] and \\Flagged", e, f)
	}
	if n := len(env.Messages("alice@"+testenv.Domain, "Sent")); n != 2 {
		t.Errorf("Sent has %d messages, want 2", n)
	}
}
