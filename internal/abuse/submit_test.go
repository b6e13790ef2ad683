package abuse

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 15: submission is the one way out of the server. Hostile or
// careless clients must not send without signing in, guess passwords
// there, send as someone else, flood, or make BURL read what is not
// theirs or more than the size limit.

const submitPW = "Submit-Secret-51aa"

// submitQueue counts what reaches the outbound queue.
type submitQueue struct {
	mu sync.Mutex
	n  int
}

func (q *submitQueue) Enqueue(ctx context.Context, m *delivery.Outbound, body io.Reader) (string, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return "", err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return fmt.Sprint("q", q.n), nil
}

func (q *submitQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// submitEnv starts a server with alice and bob and a counting queue.
func submitEnv(t *testing.T, cfg func(*config.Config)) (*testenv.Env, *submitQueue) {
	t.Helper()
	q := &submitQueue{}
	env := testenv.Start(t, testenv.Options{Enqueuer: q, Config: cfg})
	guardUser(t, env, "alice@"+testenv.Domain, submitPW)
	guardUser(t, env, "bob@"+testenv.Domain, submitPW)
	return env, q
}

// submitLogin connects to submission from a loopback address and signs
// in.
func submitLogin(t *testing.T, env *testenv.Env, from, user string) *guardConn {
	t.Helper()
	c := guardDial(t, env, "submission", from)
	c.expect("220 ")
	c.send("EHLO abuse.example")
	c.expect("250 ")
	c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+submitPW)))
	c.expect("235 ")
	return c
}

// submitNothing checks that nothing was delivered, queued or saved.
func submitNothing(t *testing.T, env *testenv.Env, q *submitQueue) {
	t.Helper()
	for _, box := range []struct{ user, mailbox string }{{"alice", "Sent"}, {"bob", "INBOX"}, {"alice", "INBOX"}} {
		if n := len(env.Messages(box.user+"@"+testenv.Domain, box.mailbox)); n != 0 {
			t.Errorf("%s's %s has %d messages", box.user, box.mailbox, n)
		}
	}
	if n := q.count(); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}

// TestSubmitUnauthenticated: without AUTH nothing is accepted (530
// 5.7.0), for local and remote recipients alike, also by BURL, and a
// client that keeps trying is disconnected.
func TestSubmitUnauthenticated(t *testing.T) {
	t.Parallel()
	env, q := submitEnv(t, nil)
	c := guardDial(t, env, "submission", "127.0.0.1")
	c.expect("220 ")
	c.send("EHLO abuse.example")
	c.expect("250 ")
	c.send("MAIL FROM:<alice@example.org>")
	c.expect("530 5.7.0 ")
	c.send("RCPT TO:<bob@example.org>")
	c.expect("503 ")
	c.send("DATA")
	c.expect("503 ")
	c.send("BURL imap://alice%40example.org@mx.test.example/Drafts;UIDVALIDITY=1/;UID=1 LAST")
	c.expect("530 5.7.0 ")
	// In one write: the server closes after the twentieth, and a
	// write after that would fail (EPIPE) before the replies are read.
	c.write(strings.Repeat("MAIL FROM:<>\r\n", 30))
	lines := c.expectClosed()
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "421 ") {
		t.Errorf("last reply %q, want 421", last)
	}
	submitNothing(t, env, q)
}

// TestSubmitAuthGuessing: failed AUTHs count for the same guessing
// protection as IMAP and POP3: the guesser's address is blocked (even
// the right password is refused from it, for IMAP too), the owner on
// another address signs in.
func TestSubmitAuthGuessing(t *testing.T) {
	t.Parallel()
	env, _ := submitEnv(t, func(c *config.Config) {
		guardFastDelays(c)
		c.Auth.IPBlockAfter = 6
	})
	c := guardDial(t, env, "submission", "127.0.0.3")
	c.expect("220 ")
	c.send("EHLO guesser.example")
	c.expect("250 ")
	for i := range 6 {
		c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("\x00alice@example.org\x00guess-%d", i))))
		c.expect("535 5.7.8 ")
	}
	c.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+submitPW)))
	c.expect("454 4.7.0 ")
	i := guardIMAP(t, env, "127.0.0.3")
	if l := guardLogin(i, "a", "alice@example.org", submitPW); strings.HasPrefix(l, "a OK") {
		t.Errorf("IMAP login from the blocked address: %q", l)
	}
	// Not base64 at all counts too, and is answered.
	c.send("AUTH PLAIN %%%")
	c.expect("5")
	owner := submitLogin(t, env, "127.0.0.4", "alice@example.org")
	owner.send("QUIT")
	owner.expect("221 ")
}

// TestSubmitSpoofedFrom: every way to name someone else as the author
// is refused at MAIL (553 5.7.1) or at the end of DATA (550 5.7.1), and
// nothing goes anywhere; a catch-all is no licence to send as its domain.
func TestSubmitSpoofedFrom(t *testing.T) {
	t.Parallel()
	env, q := submitEnv(t, nil)
	if _, err := env.Server.Admin().AliasAdd(context.Background(), "@example.net", []string{"alice@" + testenv.Domain}); err != nil {
		t.Fatal(err)
	}
	c := submitLogin(t, env, "127.0.0.1", "alice@example.org")
	for _, from := range []string{"bob@example.org", "bob+alice@example.org", "anyone@example.net", "alice@example.org.evil.example", "<>"} {
		c.send("MAIL FROM:<" + strings.Trim(from, "<>") + ">")
		c.expect("553 5.7.1 ")
	}
	for _, hdr := range []string{
		"From: bob@example.org",
		"From: alice@example.org, bob@example.org",
		`From: "alice@example.org" <bob@example.org>`,
		"From: alice@example.org\r\nSender: bob@example.org",
		"From: alice@example.org\r\nFrom: bob@example.org",
		"From: undisclosed:;",
		"Subject: no author",
		"From: alice",
	} {
		c.send("MAIL FROM:<alice@example.org>")
		c.expect("250 ")
		c.send("RCPT TO:<bob@example.org>")
		c.expect("250 ")
		c.send("RCPT TO:<carol@remote.example>")
		c.expect("250 ")
		c.send("DATA")
		c.expect("354 ")
		c.send(hdr + "\r\nTo: bob@example.org\r\n\r\nspoofed\r\n.")
		if l := c.expect("5"); !strings.HasPrefix(l, "550 5.7.1 ") {
			t.Errorf("%q: %q", hdr, l)
		}
	}
	c.send("NOOP")
	c.expect("250 ")
	submitNothing(t, env, q)
}

// TestSubmitRateLimit: an account that floods gets 451 4.7.1 once its
// hour is full, on new connections too.
func TestSubmitRateLimit(t *testing.T) {
	t.Parallel()
	env, q := submitEnv(t, func(c *config.Config) {
		c.Submission.MaxMessagesPerHour = 3
		c.Submission.MaxRecipientsPerHour = 100
	})
	c := submitLogin(t, env, "127.0.0.1", "alice@example.org")
	for range 3 {
		c.send("MAIL FROM:<alice@example.org>")
		c.expect("250 ")
		c.send("RCPT TO:<x@remote.example>")
		c.expect("250 ")
		c.send("DATA")
		c.expect("354 ")
		c.send("From: alice@example.org\r\n\r\nflood\r\n.")
		c.expect("250 ")
	}
	c.send("MAIL FROM:<alice@example.org>")
	c.expect("451 4.7.1 ")
	c2 := submitLogin(t, env, "127.0.0.5", "alice@example.org")
	c2.send("MAIL FROM:<alice@example.org>")
	c2.expect("451 4.7.1 ")
	if n := q.count(); n != 3 {
		t.Errorf("%d messages queued, want 3", n)
	}
}

// submitDraftURL appends a draft of user to Drafts over IMAP and returns
// a URL of it signed for the submission server acting for signFor
// (GENURLAUTH; only the user's own URLs can be signed).
func submitDraftURL(t *testing.T, env *testenv.Env, user, body string) string {
	t.Helper()
	c := guardIMAP(t, env, "127.0.0.1")
	if l := guardLogin(c, "a", user, submitPW); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("login: %q", l)
	}
	c.write(fmt.Sprintf("b APPEND Drafts (\\Draft) {%d+}\r\n%s\r\n", len(body), body))
	l := c.expect("b OK")
	m := regexp.MustCompile(`APPENDUID (\d+) (\d+)`).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("APPEND: %q", l)
	}
	enc := strings.ReplaceAll(user, "@", "%40")
	rump := fmt.Sprintf("imap://%s@mx.test.example/Drafts;UIDVALIDITY=%s/;UID=%s;URLAUTH=submit+%s", enc, m[1], m[2], enc)
	c.send(`c GENURLAUTH "` + rump + `" INTERNAL`)
	l = c.expect("* GENURLAUTH ")
	c.expect("c OK")
	url := strings.Trim(strings.TrimPrefix(l, "* GENURLAUTH "), `"`)
	if !strings.HasPrefix(url, rump+":internal:") {
		t.Fatalf("GENURLAUTH: %q", l)
	}
	return url
}

// TestSubmitBURLOtherUser: bob cannot send alice's draft with the URL
// she signed for the submission server acting for her (RFC 4467 §3), nor
// with one he changed to name himself; alice can.
func TestSubmitBURLOtherUser(t *testing.T) {
	t.Parallel()
	env, q := submitEnv(t, nil)
	url := submitDraftURL(t, env, "alice@example.org", "From: alice@example.org\r\nSubject: private draft\r\n\r\nonly mine\r\n")
	c := submitLogin(t, env, "127.0.0.1", "bob@example.org")
	forged := strings.Replace(url, "submit+alice%40example.org", "submit+bob%40example.org", 1)
	for _, u := range []string{url, forged, strings.Replace(url, "alice%40example.org@", "bob%40example.org@", 1)} {
		c.send("MAIL FROM:<bob@example.org>")
		c.expect("250 ")
		c.send("RCPT TO:<carol@remote.example>")
		c.expect("250 ")
		c.send("BURL " + u + " LAST")
		c.expect("554 5.6.6 ")
	}
	if n := q.count(); n != 0 {
		t.Errorf("bob queued %d messages with alice's URL", n)
	}
	a := submitLogin(t, env, "127.0.0.1", "alice@example.org")
	a.send("MAIL FROM:<alice@example.org>")
	a.expect("250 ")
	a.send("RCPT TO:<carol@remote.example>")
	a.expect("250 ")
	a.send("BURL " + url + " LAST")
	a.expect("250 2.0.0 ")
	if n := q.count(); n != 1 {
		t.Errorf("%d messages queued, want alice's one", n)
	}
}

// TestSubmitHugeBURL: BURL parts count against max_message_size like
// data sent (552 5.3.4, refused before they are read), and the session
// goes on.
func TestSubmitHugeBURL(t *testing.T) {
	t.Parallel()
	env, q := submitEnv(t, func(c *config.Config) { c.MaxMessageSize = 64 << 10 })
	big := "From: alice@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 500)
	url := submitDraftURL(t, env, "alice@example.org", big)
	c := submitLogin(t, env, "127.0.0.1", "alice@example.org")
	c.send("MAIL FROM:<alice@example.org>")
	c.expect("250 ")
	c.send("RCPT TO:<carol@remote.example>")
	c.expect("250 ")
	c.send("BURL " + url)
	c.expect("250 2.5.0 ")
	c.send("BURL " + url + " LAST")
	c.expect("552 5.3.4 ")
	c.send("NOOP")
	c.expect("250 ")
	c.send("BURL " + url + " LAST")
	c.expect("503 ")
	if n := q.count(); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}
