package abuse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/testenv"
)

// Delivery and event routes of the isolation suite (issue 14): what a
// recipient address with +detail, look-alike characters or path-like
// parts delivers to; and that NOTIFY, IDLE and a session reused after
// UNAUTHENTICATE carry nothing of another account.

// isoInboxSubjects returns the subjects of the "route-" messages in an
// account's mailbox.
func isoInboxSubjects(t *testing.T, env *testenv.Env, account, mailbox string) []string {
	t.Helper()
	var out []string
	for _, b := range env.Messages(account, mailbox) {
		for _, l := range strings.Split(string(b), "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: route-"); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestIsolationDelivery: RCPT TO addresses that try to drop a message into
// another account or another folder, over LMTP and SMTP. "+detail" names
// no folder: the message goes to the base account's INBOX ("bob+Trash" is
// bob's INBOX, never his Trash, and "alice+bob" is alice's); look-alike
// addresses are their own accounts or nobody's; nothing lands outside
// INBOX, and nothing lands with an account it was not addressed to.
func TestIsolationDelivery(t *testing.T) {
	t.Parallel()
	w := isoStart(t)
	env := w.env
	st := env.Store()
	accounts := []string{isoAlice, isoBob, isoA1ice, isoCyrLocal, isoCyrDomain, isoSam, isoLongSam}
	before := map[string][]string{}
	for _, a := range accounts {
		before[a] = isoSnapshot(t, st, a)
	}
	type route struct {
		rcpt string
		to   string // the account whose INBOX takes it; "" when refused
	}
	routes := []route{
		{"bob+Trash@example.org", isoBob},
		{"bob+Ledger-K4@example.org", isoBob},
		{"bob+../alice@example.org", isoBob},
		{"bob+@example.org", isoBob},
		{"BOB@EXAMPLE.ORG", isoBob},
		{"alice+bob@example.org", isoAlice},
		{"alice+../bob/INBOX@example.org", isoAlice},
		// The last "@" ends the local part, and its "+" the base.
		{"alice+bob@example.org/INBOX@example.org", isoAlice},
		{"+bob@example.org", ""},
		{"alice#bob@example.org", ""},
		{"bob#alice@example.org", ""},
		{"bob@example.org#alice", ""},
		// A quoted local part that needs no quotes is the same address
		// (RFC 5321 §4.1.2); a source route is ignored (§4.1.1.3, §C).
		{`"bob"@example.org`, isoBob},
		{`"bob+Trash"@example.org`, isoBob},
		{`"bob@example.org"@example.org`, ""},
		{`"alice+bob"@example.org`, isoAlice},
		{"bob/INBOX@example.org", ""},
		{"../bob@example.org", ""},
		{"bob@example.org.", ""},
		{"bob@[127.0.0.1]", ""},
		{"@example.org:bob@example.org", isoBob},
		{"@bob.example,@example.org:alice@example.org", isoAlice},
		{isoA1ice, isoA1ice},
		{isoCyrLocal, isoCyrLocal},
		{"\u0430lice+bob@example.org", isoCyrLocal},
		{isoCyrDomain, ""}, // not a local domain
		{isoPunyDomain, ""},
		{"\u017fam@example.org", isoLongSam},
		{"SAM@example.org", isoSam},
		// Addresses are found by their lower case (mail.NameKey), and İ
		// lower-cases to i: this is alice's address, as no other account
		// can have that key.
		{"AL\u0130CE@example.org", isoAlice},
		{"b\u200bob@example.org", ""},
	}
	want := map[string][]string{}
	for i, r := range routes {
		for _, listener := range []string{"lmtp", "smtp"} {
			subject := fmt.Sprintf("%s-%d", listener, i)
			c := isoDialRaw(t, env, listener, nil, "220")
			hello := "LHLO"
			if listener == "smtp" {
				hello = "EHLO"
			}
			c.smtp(hello+" iso.test", "250")
			c.smtp("MAIL FROM:<alice@example.org>", "250")
			l := c.smtp("RCPT TO:<"+r.rcpt+">", "")
			switch {
			case r.to == "" && !strings.HasPrefix(l, "5"):
				t.Errorf("ROUTE NOT REFUSED: %s RCPT TO:<%s>: %q", listener, r.rcpt, l)
			case r.to != "" && !strings.HasPrefix(l, "250"):
				t.Errorf("%s RCPT TO:<%s>: %q, want it taken for %s", listener, r.rcpt, l, r.to)
			}
			if strings.HasPrefix(l, "250") {
				c.smtp("DATA", "354")
				c.write(isoMessage("route-"+subject, "to "+r.rcpt) + ".\r\n")
				if l := c.line(); !strings.HasPrefix(l, "250") {
					t.Errorf("%s DATA for %s: %q", listener, r.rcpt, l)
				}
				if r.to != "" {
					want[r.to] = append(want[r.to], subject)
				}
			}
			c.smtp("QUIT", "221")
			c.close()
		}
	}
	for _, a := range accounts {
		got := isoInboxSubjects(t, env, a, "INBOX")
		slices.Sort(got)
		slices.Sort(want[a])
		if !slices.Equal(got, want[a]) {
			t.Errorf("%s's INBOX took %q, want %q", a, got, want[a])
		}
		// Every mailbox but INBOX is as it was.
		after := isoSnapshot(t, st, a)
		isoSameState(t, a, isoWithoutInbox(before[a]), isoWithoutInbox(after))
	}
}

// isoWithoutInbox drops the lines of a snapshot about INBOX (its status
// line and the message lines that follow it).
func isoWithoutInbox(snap []string) []string {
	var out []string
	inInbox := false
	for _, l := range snap {
		if strings.HasPrefix(l, "mailbox ") {
			inInbox = strings.Contains(l, " Name:INBOX ")
		}
		if !inInbox || strings.HasPrefix(l, "subscriptions") {
			out = append(out, l)
		}
	}
	return out
}

// TestIsolationEvents: alice's NOTIFY (with filters naming bob's
// mailboxes), IDLE and search contexts report her own mailboxes only,
// however busy bob is; and a connection on which bob signed in and
// selected his INBOX, saved a search result, made a search context and
// set NOTIFY, then UNAUTHENTICATE, carries none of it into alice's
// session that follows.
func TestIsolationEvents(t *testing.T) {
	t.Parallel()
	w := isoStart(t)
	env := w.env

	// bob's connection, reused by alice after UNAUTHENTICATE. Not
	// recorded: bob's own data crosses it before; what crosses it after
	// alice's login is checked below.
	reused := isoDialRaw(t, env, "imap", nil, "* OK")
	reused.ok("LOGIN " + isoQuote(isoBob+"#phone") + " " + isoQuote(w.bobPhone))
	reused.ok("ENABLE QRESYNC")
	reused.ok("SELECT INBOX")
	reused.ok("SEARCH RETURN (SAVE) ALL")
	reused.ok("SEARCH RETURN (UPDATE COUNT) ALL")
	reused.ok("NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange))")
	reused.ok("UNAUTHENTICATE")
	reused.ok("LOGIN " + isoQuote(isoAlice) + " " + isoQuote(isoAlicePW))
	afterLogin := func(cmd string) []string {
		u, tagged := reused.do(cmd)
		for _, l := range append(u, tagged) {
			for _, m := range isoBobMarks {
				if strings.Contains(l, m) {
					t.Errorf("LEAK after UNAUTHENTICATE: %s: %q", cmd, l)
				}
			}
		}
		return u
	}
	for _, cmd := range []string{"UID FETCH $ (BODY.PEEK[])", "FETCH 1:* (BODY.PEEK[])", "UID SEARCH $", "SEARCH RETURN (UPDATE) ALL", "EXPUNGE", "UID EXPUNGE 1:*", "STORE 1 +FLAGS (\\Deleted)"} {
		u, tagged := reused.do(cmd)
		if !strings.HasPrefix(tagged, "BAD") && !strings.HasPrefix(tagged, "NO") {
			t.Errorf("ROUTE NOT REFUSED: after UNAUTHENTICATE, not selected: %s: %q (%q)", cmd, tagged, u)
		}
		reused.ok("NOOP")
	}

	// alice waits for news three ways: NOTIFY with filters naming bob's
	// mailboxes, IDLE on her INBOX, and the reused connection (now hers)
	// with a search context on her INBOX.
	nc := w.imap(t, isoAlice, isoAlicePW)
	nc.ok("CREATE bob/INBOX")
	nc.ok(`NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)) (subtree ("bob" "~bob" "` + isoBob + `") (MessageNew MessageExpunge)) (mailboxes ("bob/INBOX" "` + isoBobFolder + `") (MessageNew))`)
	ic := w.imap(t, isoAlice, isoAlicePW)
	ic.ok("SELECT INBOX")
	ic.write("idle IDLE\r\n")
	if l := ic.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	afterLogin("SELECT INBOX")
	afterLogin("SEARCH RETURN (UPDATE COUNT) ALL")

	// bob is busy: mail, flags, expunges, folders, subscriptions,
	// annotations.
	isoLMTPDeliver(t, env, isoMessage(isoBobSubject+" new", isoBobBody), isoBob, "bob+Ledger-K4@example.org")
	bob := w.bobIMAP()
	bob.ok("SELECT INBOX")
	bob.ok(`STORE 1:* +FLAGS (\Flagged ` + isoBobKeyword + `)`)
	bob.ok(`STORE 1:2 +FLAGS (\Deleted)`)
	bob.ok("EXPUNGE")
	bob.ok("CREATE " + isoBobFolder + "-2")
	bob.ok("RENAME " + isoBobFolder + "-2 " + isoBobFolder + "-3")
	bob.ok("SUBSCRIBE " + isoBobFolder + "-3")
	bob.ok(`SETMETADATA "" (/private/comment "` + isoBobServVal + ` again")`)
	bob.ok(`SETMETADATA INBOX (` + isoBobMetaName + ` "` + isoBobMetaVal + ` again")`)
	bob.ok("LOGOUT")
	bob.close()

	// Then alice gets a message: the first news each of her sessions
	// gets is about it.
	isoLMTPDeliver(t, env, isoMessage("For alice at last", isoAliceBody+" last"), isoAlice)
	for {
		l := ic.response()
		if l == "* 3 EXISTS" {
			break
		}
		if !strings.HasPrefix(l, "* 3 RECENT") {
			t.Errorf("IDLE on alice's INBOX: %q before her own message", l)
		}
	}
	ic.write("DONE\r\n")
	for l := ic.line(); !strings.HasPrefix(l, "idle OK"); l = ic.line() {
		if l != "* 3 RECENT" {
			t.Errorf("IDLE: %q", l)
		}
	}
	ic.ok("FETCH 3 BODY.PEEK[]")
	u := nc.ok("NOOP")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* STATUS INBOX (") {
		t.Errorf("alice's NOTIFY after bob's changes and one message of hers: %q", u)
	}
	u = afterLogin("NOOP")
	for _, l := range u {
		if l != "* 3 EXISTS" && !strings.HasSuffix(l, " RECENT") && !strings.HasPrefix(l, "* ESEARCH (TAG ") {
			t.Errorf("alice's reused session after bob's changes: %q", l)
		}
	}
	if !slices.ContainsFunc(u, func(l string) bool { return strings.HasPrefix(l, "* 3 EXISTS") }) {
		t.Errorf("alice's reused session did not see her own message: %q", u)
	}

	// Ending bob's sessions ends none of alice's: not the revocation of
	// the device bob signed in with on the connection alice now uses, not
	// the deletion of bob's account. (The store runs the hook that ends
	// sessions before the admin call returns.)
	api := env.Server.Admin()
	if err := api.DeviceRevoke(context.Background(), isoBob, "phone"); err != nil {
		t.Fatal(err)
	}
	afterLogin("NOOP")
	if err := api.UserDel(context.Background(), isoBob); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*isoConn{nc, ic, reused} {
		c.ok("NOOP")
		c.ok("LOGOUT")
	}
	w.checkNoLeak()

}
