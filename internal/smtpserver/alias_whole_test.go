package smtpserver_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// aliasTx sends one message to rcpts over c: each RCPT must get its
// reply in wantRcpt; then the message, whose reply (one for SMTP, one per
// accepted recipient for LMTP) must start with "250 ".
func aliasTx(c *quotaConn, lmtp bool, subject string, rcpts []string, wantRcpt []string) {
	c.t.Helper()
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	accepted := 0
	for i, r := range rcpts {
		c.do("RCPT TO:<"+r+">", wantRcpt[i])
		if strings.HasPrefix(wantRcpt[i], "250") {
			accepted++
		}
	}
	c.do("DATA", "354 ")
	c.do(quotaBody(subject, 10), "250 2.0.0")
	for lmtp && accepted > 1 {
		c.expect("250 2.0.0")
		accepted--
	}
}

// aliasCount returns how many messages of an account's INBOX have the
// subject.
func aliasCount(t *testing.T, e *testenv.Env, account, subject string) int {
	t.Helper()
	n := 0
	for _, m := range e.Messages(account, "INBOX") {
		if strings.Contains(string(m), "\r\nSubject: "+subject+"\r\n") {
			n++
		}
	}
	return n
}

// TestAliasesWholeServer: aliases over the SMTP and LMTP listeners of the
// whole server, made through the admin socket as `postfach alias` does: a
// family list gives each account one copy (also when one of them is named
// as well, or the alias twice with +detail), +detail works on an alias,
// the catch-all takes only what no account, alias or postmaster takes,
// an account deleted leaves its aliases (and an alias of it alone is
// gone: 550 5.1.1), and a member at its quota holds the alias back at
// RCPT.
func TestAliasesWholeServer(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := "@" + testenv.Domain
	alice, bob, carol, dave := "alice"+d, "bob"+d, "carol"+d, "dave@example.net"
	e.AddUser(alice, "secret password") // the first account: postmaster
	e.AddUser(bob, "secret password")
	e.AddUser(carol, "secret password")
	e.AddUser(dave, "secret password")
	ctx := context.Background()
	api, err := admin.Dial(e.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	add := func(addr string, targets ...string) {
		t.Helper()
		if _, err := api.AliasAdd(ctx, addr, targets); err != nil {
			t.Fatalf("alias add %s: %v", addr, err)
		}
	}
	add("family"+d, alice, bob)
	add(d, carol)
	add("team@example.net", dave)
	// An alias never takes an account's address.
	if _, err := api.AliasAdd(ctx, bob, []string{carol}); err == nil {
		t.Fatal("alias add over an account succeeded")
	}

	for _, proto := range []string{"smtp", "lmtp"} {
		lmtp := proto == "lmtp"
		c := quotaDial(t, e, proto)
		// One copy each, however often an account is named.
		aliasTx(c, lmtp, proto+" family", []string{"family" + d, alice, "family+school" + d, "FAMILY" + d},
			[]string{"250 2.1.5", "250 2.1.5", "250 2.1.5", "250 2.1.5"})
		// +detail of the alias, alone: Received names it.
		aliasTx(c, lmtp, proto+" detail", []string{"family+holidays" + d}, []string{"250 2.1.5"})
		// The catch-all takes unknown addresses of its domain, not an
		// account's, an alias's or postmaster's.
		aliasTx(c, lmtp, proto+" catch-all", []string{"nobody" + d, "someone+else" + d}, []string{"250 2.1.5", "250 2.1.5"})
		aliasTx(c, lmtp, proto+" not caught", []string{bob, "postmaster" + d}, []string{"250 2.1.5", "250 2.1.5"})
		// No catch-all in example.net.
		c.do("MAIL FROM:<sender@remote.example>", "250 ")
		c.do("RCPT TO:<nobody@example.net>", "550 5.1.1")
		c.do("QUIT", "221 ")

		for _, w := range []struct {
			account, subject string
			n                int
		}{
			{alice, proto + " family", 1}, {bob, proto + " family", 1}, {carol, proto + " family", 0},
			{alice, proto + " detail", 1}, {bob, proto + " detail", 1},
			{carol, proto + " catch-all", 1}, {alice, proto + " catch-all", 0}, {bob, proto + " catch-all", 0},
			{bob, proto + " not caught", 1}, {alice, proto + " not caught", 1}, {carol, proto + " not caught", 0},
		} {
			if got := aliasCount(t, e, w.account, w.subject); got != w.n {
				t.Errorf("%s has %d messages %q, want %d", w.account, got, w.subject, w.n)
			}
		}
		for _, m := range e.Messages(bob, "INBOX") {
			if strings.Contains(string(m), "Subject: "+proto+" detail\r\n") && !strings.Contains(string(m), "\tfor <family+holidays"+d+">;") {
				t.Errorf("Received: does not name the alias:\n%s", m)
			}
		}
	}

	// Deleting an account takes it out of its aliases; an alias of it
	// alone is gone.
	if err := api.UserDel(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if err := api.UserDel(ctx, dave); err != nil {
		t.Fatal(err)
	}
	as, err := api.AliasList(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[1].Address != "family"+d || !slices.Equal(as[1].Targets, []string{alice}) {
		t.Fatalf("aliases after deleting bob and dave: %+v", as)
	}
	for _, proto := range []string{"smtp", "lmtp"} {
		c := quotaDial(t, e, proto)
		aliasTx(c, proto == "lmtp", proto+" after", []string{"family" + d}, []string{"250 2.1.5"})
		c.do("MAIL FROM:<sender@remote.example>", "250 ")
		c.do("RCPT TO:<team@example.net>", "550 5.1.1")
		c.do("QUIT", "221 ")
		if n := aliasCount(t, e, alice, proto+" after"); n != 1 {
			t.Errorf("%s: alice has %d copies after bob left the family", proto, n)
		}
	}

	// A member at its quota holds the alias back, for now.
	add("family"+d, carol)
	a, err := e.Store().Account(ctx, carol)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store().SetQuota(ctx, a.ID, store.Quota{Bytes: store.QuotaDefault, Messages: 1}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"smtp", "lmtp"} {
		c := quotaDial(t, e, proto)
		c.do("MAIL FROM:<sender@remote.example>", "250 ")
		c.do("RCPT TO:<family"+d+">", "452 4.2.2")
		c.do("RCPT TO:<"+alice+">", "250 2.1.5")
		c.do("QUIT", "221 ")
	}
	if probs, err := e.Store().Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}
