package abuse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// Issue 11, item 6: password guessing slows and blocks the guesser,
// never the owner.

const (
	guardOwnerPW = "Owner-Secret-7c1d"
	guardGuessPW = "Guess-Secret-4b2e"
)

// guardFastDelays keeps the guessing protection's counts at their
// defaults but its waits short, so a test can make dozens of failures.
func guardFastDelays(c *config.Config) {
	c.Auth.IPMaxDelay = config.Duration(20e6)      // 20 ms
	c.Auth.AccountMaxDelay = config.Duration(10e6) // 10 ms
}

// guardGuessIMAP fails n logins of user over IMAP from a loopback address,
// on one connection (reconnecting when the server closes it).
func guardGuessIMAP(t *testing.T, env *testenv.Env, from, user string, n int) {
	t.Helper()
	c := guardIMAP(t, env, from)
	for i := range n {
		tag := fmt.Sprintf("g%d", i)
		if l := guardLogin(c, tag, user, guardGuessPW); !strings.HasPrefix(l, tag+" NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("guess %d from %s: %q", i+1, from, l)
		}
		if i%10 == 9 {
			// Sessions end after too many bad commands in a row:
			// start a new one now and then.
			c.send("q LOGOUT")
			c.expectClosed()
			c = guardIMAP(t, env, from)
		}
	}
}

// guardGuessPOP3 fails n logins of user over POP3 from a loopback address.
func guardGuessPOP3(t *testing.T, env *testenv.Env, from, user string, n int) {
	t.Helper()
	c := guardPOP3(t, env, from)
	for i := range n {
		c.send("USER " + user)
		c.expect("+OK")
		c.send("PASS " + guardGuessPW)
		if l := c.line(); !strings.HasPrefix(l, "-ERR [AUTH]") {
			t.Fatalf("POP3 guess %d from %s: %q", i+1, from, l)
		}
		if i%10 == 9 {
			c.send("QUIT")
			c.expectClosed()
			c = guardPOP3(t, env, from)
		}
	}
}

// guardOwnerIn checks that the owner logs in from a loopback address over
// IMAP and POP3.
func guardOwnerIn(t *testing.T, env *testenv.Env, from, user string) {
	t.Helper()
	c := guardIMAP(t, env, from)
	if l := guardLogin(c, "o1", user, guardOwnerPW); !strings.HasPrefix(l, "o1 OK ") {
		t.Fatalf("owner from %s over IMAP: %q", from, l)
	}
	c.send("o2 LOGOUT")
	c.expectClosed()
	p := guardPOP3(t, env, from)
	p.send("USER " + user)
	p.expect("+OK")
	p.send("PASS " + guardOwnerPW)
	if l := p.line(); !strings.HasPrefix(l, "+OK ") {
		t.Fatalf("owner from %s over POP3: %q", from, l)
	}
	p.send("QUIT")
	p.expectClosed()
}

// TestGuardGuessersDoNotLockOutTheOwner is the outside test of issue 11:
// 50 wrong passwords from three IPs, then the owner's right password from
// a fresh IP, over IMAP and POP3: accepted. (Before the fix the account
// was locked: NO [UNAVAILABLE] and -ERR [SYS/TEMP].) A guesser that goes
// on to 20 failures is blocked, right password or not, on both
// protocols, while the owner still gets in; /metrics counts it and the
// log says it once, with address and account and without a password.
func TestGuardGuessersDoNotLockOutTheOwner(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardFastDelays))
	const user = "alice@example.org"
	guardUser(t, env, user, guardOwnerPW)

	guardParallel(3, func(i int) {
		switch i {
		case 0:
			guardGuessIMAP(t, env, "127.0.0.2", user, 17)
		case 1:
			guardGuessIMAP(t, env, "127.0.0.3", user, 17)
		case 2:
			guardGuessPOP3(t, env, "127.0.0.4", user, 16)
		}
	})
	guardOwnerIn(t, env, "127.0.0.10", user)

	// 127.0.0.2 reaches 20 failures: blocked, even with the right
	// password, on IMAP and on POP3.
	guardGuessIMAP(t, env, "127.0.0.2", user, 3)
	c := guardIMAP(t, env, "127.0.0.2")
	if l := guardLogin(c, "b1", user, guardOwnerPW); !strings.HasPrefix(l, "b1 NO [UNAVAILABLE]") {
		t.Fatalf("blocked client, right password, IMAP: %q", l)
	}
	p := guardPOP3(t, env, "127.0.0.2")
	p.send("USER " + user)
	p.expect("+OK")
	p.send("PASS " + guardOwnerPW)
	if l := p.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("blocked client, right password, POP3: %q", l)
	}
	// Another account from the blocked client: refused too.
	guardUser(t, env, "bob@example.org", guardOwnerPW)
	if l := guardLogin(c, "b2", "bob@example.org", guardOwnerPW); !strings.HasPrefix(l, "b2 NO [UNAVAILABLE]") {
		t.Fatalf("blocked client, other account: %q", l)
	}
	// The owner, and the other guessers' right passwords, get in.
	guardOwnerIn(t, env, "127.0.0.10", user)
	guardOwnerIn(t, env, "127.0.0.3", user)

	m := guardMetrics(t, env)
	for _, k := range []string{
		`postfach_auth_failures_total{service="imap"}`, `postfach_auth_failures_total{service="pop3"}`,
		"postfach_auth_delays_total", "postfach_auth_blocks_total", "postfach_auth_blocked_clients",
		`postfach_auth_refused_total{service="imap"}`, `postfach_auth_refused_total{service="pop3"}`,
	} {
		if m[k] <= 0 {
			t.Errorf("metric %s = %v", k, m[k])
		}
	}
	if got := m[`postfach_auth_failures_total{service="imap"}`] + m[`postfach_auth_failures_total{service="pop3"}`]; got != 53 {
		t.Errorf("%v failures counted, want 53", got)
	}
	if m["postfach_auth_blocks_total"] != 1 || m["postfach_auth_blocked_clients"] != 1 {
		t.Errorf("blocks %v, blocked now %v", m["postfach_auth_blocks_total"], m["postfach_auth_blocked_clients"])
	}
	logs := env.Logs()
	if strings.Contains(logs, guardOwnerPW) || strings.Contains(logs, guardGuessPW) {
		t.Error("a password appears in the log")
	}
	blocked := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "client blocked after repeated login failures") {
			blocked++
			if !strings.Contains(l, "127.0.0.2") || !strings.Contains(l, user) {
				t.Errorf("block logged without address or account: %s", l)
			}
		}
	}
	if blocked != 1 {
		t.Errorf("the block was logged %d times", blocked)
	}
}
