package imapserver

import (
	"context"
	"fmt"
	"testing"
)

// listextAccount logs into a fresh account whose mailboxes are INBOX and
// those given (created with their parents), and whose subscriptions are
// exactly subs (which need not exist). The default mailboxes are removed.
func listextAccount(t *testing.T, ts *testServer, user string, mailboxes, subs []string) *client {
	t.Helper()
	ts.addUser(user)
	c := ts.login(user)
	n := 0
	tag := func() string { n++; return fmt.Sprintf("s%d", n) }
	for _, name := range []string{"Drafts", "Sent", "Trash", "Junk", "Archive"} {
		c.ok(tag() + " DELETE " + name)
	}
	for _, name := range mailboxes {
		c.ok(tag() + ` CREATE "` + name + `"`)
	}
	// Whatever CREATE subscribed, and the defaults: off, then exactly subs.
	for _, name := range append([]string{"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}, mailboxes...) {
		c.ok(tag() + ` UNSUBSCRIBE "` + name + `"`)
	}
	for _, name := range subs {
		c.ok(tag() + ` SUBSCRIBE "` + name + `"`)
	}
	return c
}

// TestListExtendedRFC5258Examples runs the examples of RFC 5258 §5 (with
// INBOX spelled as postfach spells it, and the children attributes
// postfach always returns).
func TestListExtendedRFC5258Examples(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	// Examples 1 to 6, and the RECURSIVEMATCH example of §3.5's kind.
	c := listextAccount(t, ts, "fruit@example.org",
		[]string{"Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable/Broccoli", "Vegetable/Corn"},
		[]string{"INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"})
	c.expect(`e1 LIST "" "*"`,
		`* LIST (\HasChildren) "/" Fruit`,
		`* LIST (\HasNoChildren) "/" Fruit/Apple`,
		`* LIST (\HasNoChildren) "/" Fruit/Banana`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren) "/" Tofu`,
		`* LIST (\HasChildren) "/" Vegetable`,
		`* LIST (\HasNoChildren) "/" Vegetable/Broccoli`,
		`* LIST (\HasNoChildren) "/" Vegetable/Corn`,
		"e1 OK LIST completed")
	subscribed := []string{
		`* LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana`,
		`* LIST (\NonExistent \Subscribed) "/" Fruit/Peach`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* LIST (\HasChildren \Subscribed) "/" Vegetable`,
		`* LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli`,
	}
	c.expect(`e2 LIST (SUBSCRIBED) "" "*"`, append(subscribed, "e2 OK LIST completed")...)
	top := []string{
		`* LIST (\HasChildren) "/" Fruit`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren) "/" Tofu`,
		`* LIST (\HasChildren) "/" Vegetable`,
	}
	c.expect(`e3 LIST () "" "%" RETURN (CHILDREN)`, append(top, "e3 OK LIST completed")...)
	// There are no remote mailboxes: REMOTE changes nothing.
	c.expect(`e4 LIST (REMOTE) "" "%" RETURN (CHILDREN)`, append(top, "e4 OK LIST completed")...)
	c.expect(`e5 LIST (REMOTE SUBSCRIBED) "" "*"`, append(subscribed, "e5 OK LIST completed")...)
	c.expect(`e6 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)`,
		`* LIST (\HasChildren) "/" Fruit`,
		`* LIST (\HasNoChildren) "/" Fruit/Apple`,
		`* LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* LIST (\HasNoChildren) "/" Tofu`,
		`* LIST (\HasChildren \Subscribed) "/" Vegetable`,
		`* LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli`,
		`* LIST (\HasNoChildren) "/" Vegetable/Corn`,
		"e6 OK LIST completed")
	// CHILDINFO: Fruit is listed for its subscribed children alone,
	// Vegetable for itself and for Broccoli, which "%" does not list.
	c.expect(`e7 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`,
		`* LIST (\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* LIST (\HasChildren \Subscribed) "/" Vegetable ("CHILDINFO" ("SUBSCRIBED"))`,
		"e7 OK LIST completed")
	// With "*" every subscribed name is listed: no CHILDINFO is needed.
	c.expect(`e8 LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`, append(subscribed, "e8 OK LIST completed")...)

	// The example of \HasChildren against CHILDINFO (Foo, Moo).
	b := listextAccount(t, ts, "foo@example.org", []string{"Foo/Bar", "Foo/Baz", "Moo"}, []string{"Foo/Baz"})
	b.expect(`a1 LIST (SUBSCRIBED) "" "*"`, `* LIST (\HasNoChildren \Subscribed) "/" Foo/Baz`, "a1 OK LIST completed")
	b.expect(`a2 LIST (SUBSCRIBED) "" "%"`, "a2 OK LIST completed")
	b.expect(`a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`, `* LIST (\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))`, "a3 OK LIST completed")
	// A1: Foo subscribed too.
	b.ok("a4 SUBSCRIBE Foo")
	b.expect(`a5 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`, `* LIST (\HasChildren \Subscribed) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))`, "a5 OK LIST completed")
	// A2: a parent that does not exist (here only subscriptions hold
	// the names).
	b.ok("a6 UNSUBSCRIBE Foo")
	b.ok("a7 UNSUBSCRIBE Foo/Baz")
	b.ok("a8 SUBSCRIBE Goo/Baz")
	b.expect(`a9 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`, `* LIST (\NonExistent) "/" Goo ("CHILDINFO" ("SUBSCRIBED"))`, "a9 OK LIST completed")
	// B: nothing subscribed, nothing listed.
	b.ok("b1 UNSUBSCRIBE Goo/Baz")
	b.expect(`b2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`, "b2 OK LIST completed")
	// C: Foo and Moo subscribed, none of Foo's children.
	b.ok("b3 SUBSCRIBE Foo")
	b.ok("b4 SUBSCRIBE Moo")
	b.expect(`b5 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)`,
		`* LIST (\HasChildren \Subscribed) "/" Foo`,
		`* LIST (\HasNoChildren \Subscribed) "/" Moo`,
		"b5 OK LIST completed")

	// Multiple patterns.
	ts.addUser("sent@example.org")
	d := ts.login("sent@example.org")
	for i, name := range []string{"Sent/March2004", "Sent/December2003", "Sent/August2004"} {
		d.ok(fmt.Sprintf("c%d CREATE %s", i, name))
	}
	d.expect(`c4 LIST "" ("INBOX" "Drafts" "Sent/%")`,
		`* LIST (\HasNoChildren \Drafts) "/" Drafts`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren) "/" Sent/August2004`,
		`* LIST (\HasNoChildren) "/" Sent/December2003`,
		`* LIST (\HasNoChildren) "/" Sent/March2004`,
		"c4 OK LIST completed")

	// CHILDINFO does not imply \HasChildren: foo/bar is only a
	// subscription.
	f := listextAccount(t, ts, "lone@example.org", []string{"foo"}, []string{"foo/bar"})
	f.expect(`f1 LIST "" ("foo" "foo/*")`, `* LIST (\HasNoChildren) "/" foo`, "f1 OK LIST completed")
	f.expect(`f2 LIST (SUBSCRIBED) "" "foo/*"`, `* LIST (\NonExistent \Subscribed) "/" foo/bar`, "f2 OK LIST completed")
	f.expect(`f3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)`,
		`* LIST (\HasNoChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))`, "f3 OK LIST completed")

	// Levels that are not mailboxes (here made by the store directly,
	// as an import could): \NonExistent \HasChildren for LIST-EXTENDED
	// (\Noselect in a plain IMAP4rev1 LIST).
	acct := ts.addUser("music@example.org")
	for _, name := range []string{"music/rock", "also/jazz"} {
		if _, err := ts.st.CreateMailbox(context.Background(), acct, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	m := ts.login("music@example.org")
	m.expect(`m1 LIST () "" "%o"`,
		`* LIST (\NonExistent \HasChildren) "/" also`,
		"m1 OK LIST completed")
	m.expect(`m2 LIST () "" "%c" RETURN (CHILDREN)`, `* LIST (\NonExistent \HasChildren) "/" music`, "m2 OK LIST completed")
	m.expect(`m3 LIST "" "%c"`, `* LIST (\Noselect \HasChildren) "/" music`, "m3 OK LIST completed")
}

// TestListRecursiveMatchRedundant: CHILDINFO goes with a name only when
// a descendant that meets the selection criteria is not listed itself
// (RFC 5258 §3.5); a name that does not meet the criteria is listed
// only for such a descendant.
func TestListRecursiveMatchRedundant(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := listextAccount(t, ts, "alice@example.org",
		[]string{"box/one", "box/two/one", "box/three", "box/four/five", "box/four/fivesix", "box/six/six", "box/seven/seven", "box/seven/eight"},
		[]string{"box/one", "box/two/one", "box/six/six", "box/seven/seven", "box/seven/eight"})
	// box/two is listed for its child alone; with the child matched too,
	// not at all.
	c.expect(`a1 LIST (SUBSCRIBED RECURSIVEMATCH) "" (box/two)`,
		`* LIST (\HasChildren) "/" box/two ("CHILDINFO" ("SUBSCRIBED"))`, "a1 OK LIST completed")
	c.expect(`a2 LIST (SUBSCRIBED RECURSIVEMATCH) "" (box/two box/two/one)`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/two/one`, "a2 OK LIST completed")
	c.expect(`a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" box/two%`,
		`* LIST (\HasChildren) "/" box/two ("CHILDINFO" ("SUBSCRIBED"))`, "a3 OK LIST completed")
	c.expect(`a4 LIST (SUBSCRIBED RECURSIVEMATCH) "" *six`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/six/six`, "a4 OK LIST completed")
	// box/seven/eight does not match "*seven": box/seven gets CHILDINFO.
	c.expect(`a5 LIST (SUBSCRIBED RECURSIVEMATCH) "" *seven`,
		`* LIST (\HasChildren) "/" box/seven ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/seven/seven`, "a5 OK LIST completed")
	c.expect(`a6 LIST (SUBSCRIBED) "" box/*`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/one`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/seven/eight`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/seven/seven`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/six/six`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/two/one`,
		"a6 OK LIST completed")
	c.expect(`a7 LIST (SUBSCRIBED RECURSIVEMATCH) "" box/%`,
		`* LIST (\HasNoChildren \Subscribed) "/" box/one`,
		`* LIST (\HasChildren) "/" box/seven ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren) "/" box/six ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren) "/" box/two ("CHILDINFO" ("SUBSCRIBED"))`,
		"a7 OK LIST completed")
	// SPECIAL-USE works the same way.
	c.ok(`a8 CREATE box/four/Archive (USE (\Archive))`)
	c.expect(`a9 LIST (SPECIAL-USE RECURSIVEMATCH) "" box/%`,
		`* LIST (\HasChildren) "/" box/four ("CHILDINFO" ("SPECIAL-USE"))`, "a9 OK LIST completed")
}
