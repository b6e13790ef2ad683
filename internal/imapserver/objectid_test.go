package imapserver

import (
	"strings"
	"testing"
)

// TestObjectID: OBJECTID (RFC 8474): MAILBOXID from CREATE, SELECT and
// STATUS, stable across RENAME; EMAILID kept by COPY; THREADID NIL;
// SEARCH EMAILID.
func TestObjectID(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"))
	c := ts.login("alice@example.org")
	if caps := strings.Join(c.ok("a0 CAPABILITY"), " "); !strings.Contains(caps, " OBJECTID") {
		t.Fatalf("capabilities: %s", caps)
	}
	lines := c.do("a1 CREATE Projects")
	created := lines[len(lines)-1]
	id, ok := strings.CutPrefix(created, "a1 OK [MAILBOXID (")
	if !ok {
		t.Fatalf("CREATE: %s", created)
	}
	id, _, _ = strings.Cut(id, ")")
	c.expect("a2 STATUS Projects (MAILBOXID MESSAGES)", "* STATUS Projects (MESSAGES 0 MAILBOXID ("+id+"))", "a2 OK STATUS completed")
	c.ok("a3 RENAME Projects Work")
	c.expect("a4 STATUS Work (MAILBOXID)", "* STATUS Work (MAILBOXID ("+id+"))", "a4 OK STATUS completed")
	c.expect(`a5 LIST "" Work RETURN (STATUS (MAILBOXID))`, `* LIST (\HasNoChildren) "/" Work`, "* STATUS Work (MAILBOXID ("+id+"))", "a5 OK LIST completed")
	sel := c.ok("a6 SELECT INBOX")
	if !strings.Contains(strings.Join(sel, "\n"), "* OK [MAILBOXID (M") {
		t.Fatalf("SELECT without MAILBOXID:\n%s", strings.Join(sel, "\n"))
	}
	f := c.ok("a7 FETCH 1 (EMAILID THREADID)")
	eid, ok := strings.CutPrefix(f[0], "* 1 FETCH (EMAILID (")
	if !ok {
		t.Fatalf("FETCH: %s", f[0])
	}
	eid, rest, _ := strings.Cut(eid, ")")
	if rest != " THREADID NIL)" {
		t.Fatalf("FETCH: %s", f[0])
	}
	c.ok("a8 COPY 1 Work")
	c.ok("a9 SELECT Work")
	c.expect("b1 FETCH 1 (EMAILID)", "* 1 FETCH (EMAILID ("+eid+"))", "b1 OK FETCH completed")
	c.expect("b2 SEARCH EMAILID "+eid, "* SEARCH 1", "b2 OK SEARCH completed")
	c.expect("b3 SEARCH EMAILID nosuchid", "* SEARCH", "b3 OK SEARCH completed")
}
