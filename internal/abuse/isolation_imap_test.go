package abuse

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/postfach/postfach/internal/imapurl"
)

// IMAP routes of the isolation suite (issue 14): alice, logged in, tries
// every way IMAP offers to name, read, change or learn about bob's
// mailboxes, over a raw socket and with go-imap's client.

// isoNameKind says how a hostile mailbox name is refused.
type isoNameKind int

const (
	// isoInvalid names are not mailbox names at all: NO [CANNOT] (or BAD
	// where the syntax itself is wrong).
	isoInvalid isoNameKind = iota
	// isoMissing names are valid names of alice's namespace that she
	// does not have (bob has some of them, or something like them):
	// NO [NONEXISTENT] or, where the command would create, NO [TRYCREATE].
	isoMissing
)

// isoHostileName is a mailbox name that points at bob's mail, as alice
// sends it (raw: already quoted or a literal).
type isoHostileName struct {
	raw  string
	kind isoNameKind
}

// isoHostileNames are the names of the routes: "..", "/", NUL, "~", "#",
// other users' names, very long and deep names, and encodings of them.
func (w *isoWorld) isoHostileNames() []isoHostileName {
	q := isoQuote
	long := strings.Repeat("b", 1001)
	level := "bob/" + strings.Repeat("c", 256)
	deep := strings.Repeat("bob/", 40) + "INBOX"
	return []isoHostileName{
		{q("../bob/INBOX"), isoInvalid},
		{q(".."), isoInvalid},
		{q("."), isoInvalid},
		{q("INBOX/../../bob/INBOX"), isoInvalid},
		{q("bob/../INBOX"), isoInvalid},
		{q("/bob/INBOX"), isoInvalid},
		{q("bob//INBOX"), isoInvalid},
		{q("~/../bob"), isoInvalid},
		{q("INBOX\x00../bob/INBOX"), isoInvalid}, // NUL, as a literal
		{q("bob\x00"), isoInvalid},
		{q("&AC4ALg-/bob/INBOX"), isoInvalid}, // ".." in modified UTF-7
		{q("bob/&AC4ALg-/INBOX"), isoInvalid},
		{q(long), isoInvalid},
		{q(level), isoInvalid},
		{q(deep), isoInvalid},
		{q(strings.Repeat("bob/INBOX/", 7000)), isoInvalid}, // over the command line's 64 KiB, as a literal
		{isoQuote(strings.Repeat("x", 70000)), isoInvalid},
		{q("bob/INBOX"), isoMissing},
		{q("bob"), isoMissing},
		{q("~bob/INBOX"), isoMissing},
		{q("~bob"), isoMissing},
		{q("#user/bob/INBOX"), isoMissing},
		{q("#shared/bob/INBOX"), isoMissing},
		{q("#shared"), isoMissing},
		{q("#mh/bob"), isoMissing},
		{q("Other Users/bob/INBOX"), isoMissing},
		{q("Shared Folders/bob"), isoMissing},
		{q("user.bob.INBOX"), isoMissing},
		{q(isoBob + "/INBOX"), isoMissing},
		{q(isoBob), isoMissing},
		{q("BOB@EXAMPLE.ORG/INBOX"), isoMissing},
		{q("%2e%2e/bob/INBOX"), isoMissing},
		{q(`\bob\INBOX`), isoMissing},
		{q(isoBobFolder), isoMissing}, // bob's own folder name, guessed
		{q(isoBobSub), isoMissing},
		{q("M" + strconv.FormatInt(int64(w.bobInbox.ID), 10)), isoMissing}, // bob's MAILBOXID
		{q("\u0430lice/INBOX"), isoMissing},
	}
}

// refusal runs cmd, wants a tagged answer with one of the prefixes, no
// untagged data with it (an "OK [CLOSED]" aside), and a session that
// still works.
func (c *isoConn) refusal(cmd string, want ...string) {
	c.t.Helper()
	u, tagged := c.do(cmd)
	if !slices.ContainsFunc(want, func(p string) bool { return strings.HasPrefix(tagged, p) }) {
		c.t.Errorf("ROUTE NOT REFUSED: %s: %q, want one of %q (untagged %q)", isoShort(cmd), tagged, want, u)
	}
	for _, l := range u {
		if !strings.HasPrefix(l, "* OK [CLOSED]") {
			c.t.Errorf("%s: untagged data with the refusal: %q", isoShort(cmd), l)
		}
	}
	if _, t := c.do("NOOP"); !strings.HasPrefix(t, "OK") {
		c.t.Fatalf("session after %s: NOOP %q", isoShort(cmd), t)
	}
}

// TestIsolationIMAP: alice, logged in over IMAP, tries to reach bob's mail
// by mailbox names, listing patterns, UID ranges, COPY, MOVE and APPEND
// targets, CATENATE URLs, SEARCH, METADATA, NOTIFY and the commands of
// extensions postfach does not have (ACL, URLAUTH, ESEARCH IN, QUOTA by
// another user's root). Every route is refused or answers from alice's
// own mailboxes only; bob's store is unchanged; nothing of his reaches
// alice; nothing she named became a file.
func TestIsolationIMAP(t *testing.T) {
	t.Parallel()
	w := isoStart(t)
	st := w.env.Store()
	bobBefore := isoSnapshot(t, st, isoBob)
	others := map[string][]string{}
	for _, u := range []string{isoA1ice, isoCyrLocal, isoCyrDomain} {
		others[u] = isoSnapshot(t, st, u)
	}

	t.Run("names", func(t *testing.T) { w.isoRouteNames(t) })
	t.Run("list", func(t *testing.T) { w.isoRouteList(t) })
	t.Run("uids", func(t *testing.T) { w.isoRouteUIDs(t) })
	t.Run("search", func(t *testing.T) { w.isoRouteSearch(t) })
	t.Run("catenate", func(t *testing.T) { w.isoRouteCatenate(t) })
	t.Run("metadata", func(t *testing.T) { w.isoRouteMetadata(t) })
	t.Run("notify", func(t *testing.T) { w.isoRouteNotify(t) })
	t.Run("extensions", func(t *testing.T) { w.isoRouteExtensions(t) })
	t.Run("own-namespace", func(t *testing.T) { w.isoRouteOwnNamespace(t) })
	t.Run("go-imap", func(t *testing.T) { w.isoRouteGoIMAP(t) })

	isoSameState(t, "bob", bobBefore, isoSnapshot(t, st, isoBob))
	for u, before := range others {
		isoSameState(t, u, before, isoSnapshot(t, st, u))
	}
	w.checkNoLeak()
	isoCheckDataDir(t, w.env.Config.DataDir)
}

// isoRouteNames: every command that takes a mailbox name, with every
// hostile name.
func (w *isoWorld) isoRouteNames(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	for _, n := range w.isoHostileNames() {
		look, create := []string{"NO [CANNOT]", "BAD"}, []string{"NO [CANNOT]", "BAD"}
		if n.kind == isoMissing {
			look, create = []string{"NO [NONEXISTENT]"}, []string{"NO [TRYCREATE]"}
		}
		c.refusal("SELECT "+n.raw, look...)
		c.refusal("EXAMINE "+n.raw, look...)
		c.refusal("STATUS "+n.raw+" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)", look...)
		c.refusal("DELETE "+n.raw, look...)
		c.refusal("RENAME "+n.raw+" Stolen", look...)
		c.refusal("GETMETADATA (DEPTH infinity) "+n.raw+" (/private /shared)", look...)
		c.refusal("SETMETADATA "+n.raw+" (/private/comment \"alice was here\")", look...)
		c.refusal("APPEND "+n.raw+" {"+strconv.Itoa(len(isoMessage("x", isoAliceBody)))+"+}\r\n"+isoMessage("x", isoAliceBody), create...)
		// COPY and MOVE from alice's INBOX (two messages) into the name.
		c.ok("SELECT INBOX")
		c.refusal("COPY 1:* "+n.raw, create...)
		c.refusal("UID COPY 1:4294967295 "+n.raw, create...)
		c.refusal("MOVE 1 "+n.raw, create...)
		c.refusal("UID MOVE 1:* "+n.raw, create...)
		c.ok("UNSELECT")
		if n.kind == isoInvalid {
			// Valid names may be subscribed to, existing or not (RFC 9051
			// §6.3.7): that is alice's own list.
			c.refusal("SUBSCRIBE "+n.raw, "NO [CANNOT]", "BAD")
			c.refusal("CREATE "+n.raw, "NO [CANNOT]", "BAD")
			c.refusal("RENAME "+isoAliceFolder+" "+n.raw, "NO [CANNOT]", "BAD")
		}
	}
	// A name's answer does not depend on whether bob has such a mailbox:
	// his folder and a folder nobody has get the same words.
	_, a := c.do("SELECT " + isoQuote(isoBobFolder))
	_, b := c.do("SELECT " + isoQuote("Nowhere-K4"))
	if a != b {
		t.Errorf("SELECT of bob's folder name %q, of a name nobody has %q", a, b)
	}
	c.ok("LOGOUT")
}

// isoRouteList: LIST and LSUB with references and patterns that climb out
// of alice's namespace or name bob's.
func (w *isoWorld) isoRouteList(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	own := map[string]bool{}
	for _, l := range c.ok(`LIST "" "*"`) {
		own[isoListName(t, l)] = true
	}
	if !own["INBOX"] || !own[isoAliceFolder] || len(own) != 7 {
		t.Fatalf(`alice's LIST "" "*": %v`, own)
	}
	for _, cmd := range []string{
		`LIST "" "*"`, `LIST "" "%"`, `LIST "~bob" "*"`, `LIST "" "~bob/*"`, `LIST "" "~*"`,
		`LIST "" "%/../*"`, `LIST "" "../*"`, `LIST "../" "*"`, `LIST ".." "%"`, `LIST "/" "*"`, `LIST "" "/*"`,
		`LIST "" "/"`, `LIST "#shared" "*"`, `LIST "" "#shared/*"`, `LIST "" "#user/*"`, `LIST "#user/" "*"`,
		`LIST "" "Other Users/*"`, `LIST "Other Users/" "%"`, `LIST "" "bob*"`, `LIST "" "*bob*"`,
		`LIST "" "` + isoBob + `/*"`, `LIST "bob@example.org/" "*"`, `LIST "" "Ledger*"`, `LIST "" "*K4*"`,
		`LIST (SUBSCRIBED) "" "*"`, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`, `LIST (REMOTE) "" "*"`,
		`LIST (SPECIAL-USE) "" "*"`, `LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN SIZE) CHILDREN SUBSCRIBED SPECIAL-USE MYRIGHTS)`,
		`LIST "" ("*" "~bob/*" "../*" "#shared/*")`, `LSUB "" "*"`, `LSUB "~bob" "*"`, `LSUB "" "Ledger*"`,
		`LIST "" "` + strings.Repeat("*%", 200) + `"`, `LIST "` + strings.Repeat("../", 300) + `" "*"`,
	} {
		u, tagged := c.do(cmd)
		if !strings.HasPrefix(tagged, "OK") && !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("%s: %q", cmd, tagged)
		}
		for _, l := range u {
			if strings.HasPrefix(l, "* STATUS ") {
				continue // of a name LIST returned; checked by the leak check
			}
			name := isoListName(t, l)
			if !own[name] {
				t.Errorf("%s: listed %q, which alice does not have (%q)", cmd, name, l)
			}
		}
	}
	// The hierarchy separator of a NAMESPACE answer is alice's only: no
	// other users' or shared namespaces are announced.
	if u := c.ok("NAMESPACE"); len(u) != 1 || u[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("NAMESPACE: %q", u)
	}
	c.ok("LOGOUT")
}

// isoListName returns the mailbox of a LIST or LSUB response.
func isoListName(t *testing.T, l string) string {
	t.Helper()
	if !strings.HasPrefix(l, "* LIST ") && !strings.HasPrefix(l, "* LSUB ") {
		t.Errorf("not a LIST response: %q", l)
		return l
	}
	// * LIST (\Attrs) "/" name [extended data]
	rest := l[strings.IndexByte(l, ')')+2:]
	rest = rest[strings.IndexByte(rest, ' ')+1:]
	if strings.HasPrefix(rest, `"`) {
		s, err := strconv.Unquote(rest[:strings.Index(rest[1:], `"`)+2])
		if err == nil {
			return s
		}
		return rest
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	if rest == "INBOX" || strings.EqualFold(rest, "inbox") {
		return "INBOX"
	}
	return rest
}

// isoRouteUIDs: UID ranges and sequence sets reach alice's messages only,
// whatever numbers bob's mailboxes use.
func (w *isoWorld) isoRouteUIDs(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	c.ok("SELECT INBOX")
	for _, f := range []struct {
		cmd  string
		body bool // each FETCH response holds a whole body
	}{
		{"UID FETCH 1:* (UID FLAGS BODY.PEEK[] EMAILID)", true},
		{"UID FETCH 4294967295 (BODY.PEEK[])", true},
		{"UID FETCH 3:4294967295 (BODY.PEEK[])", true},
		{"UID FETCH *:1 (BODY.PEEK[HEADER])", false},
		{"FETCH 1:* (BINARY.PEEK[] ENVELOPE BODYSTRUCTURE)", true},
		{"FETCH 1:2 (BODY.PEEK[]<0.4294967295>)", true},
		{"UID FETCH 1,2,3,4,5,6,7,8,9,10 (RFC822.SIZE BODY.PEEK[TEXT])", true},
		{"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)", false},
	} {
		for _, l := range c.ok(f.cmd) {
			if f.body && strings.Contains(l, " FETCH ") && !strings.Contains(l, isoAliceBody) {
				t.Errorf("%s: a message that is not alice's: %q", f.cmd, l)
			}
		}
	}
	// Numbers that are not UIDs or not in the mailbox.
	c.refusal("UID FETCH 0 (BODY.PEEK[])", "BAD")
	c.refusal("UID FETCH 4294967296 (BODY.PEEK[])", "BAD")
	c.refusal("FETCH 3 (BODY.PEEK[])", "BAD", "NO")
	c.refusal("FETCH 4294967295 (BODY.PEEK[])", "BAD", "NO")
	c.refusal("FETCH -1 (BODY.PEEK[])", "BAD")
	// Changes go to alice's messages only.
	c.ok(`UID STORE 1:4294967295 +FLAGS.SILENT (\Flagged $AliceTouch)`)
	c.ok("UID EXPUNGE 3:4294967295")
	c.ok("UID COPY 3:4294967295 Trash")
	c.ok("UID MOVE 3:4294967295 Trash")
	c.ok(`UID STORE 1:* -FLAGS.SILENT (\Flagged $AliceTouch)`)
	if u := c.ok("STATUS Trash (MESSAGES)"); len(u) != 1 || !strings.HasSuffix(u[0], "(MESSAGES 0)") {
		t.Errorf("alice's Trash after COPY and MOVE of UIDs she does not have: %q", u)
	}
	c.ok("LOGOUT")
}

// isoRouteSearch: searches, sorts and threads see alice's mailbox only;
// searching across mailboxes (ESEARCH IN, RFC 7377) is not offered.
func (w *isoWorld) isoRouteSearch(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	c.ok("SELECT INBOX")
	empty := map[string]bool{"* SEARCH": true, "* SORT": true, "* THREAD": true}
	for _, key := range []string{
		`TEXT "` + isoBobBody + `"`, `SUBJECT "` + isoBobSubject + `"`, `BODY "secret"`, `KEYWORD ` + isoBobKeyword,
		`HEADER Subject "Ledger"`, `UID 3:4294967295`, `EMAILID ` + w.bobEmailIDs[0], `OR UID 3 UID 4294967295`,
	} {
		for _, cmd := range []string{"SEARCH " + key, "UID SEARCH CHARSET UTF-8 " + key, "SORT (SUBJECT) UTF-8 " + key,
			"THREAD REFERENCES UTF-8 " + key} {
			u := c.ok(cmd)
			if len(u) != 1 || !empty[u[0]] {
				t.Errorf("%s: %q, want nothing found", cmd, u)
			}
		}
		u := c.ok("SEARCH RETURN (MIN MAX COUNT ALL) " + key)
		if len(u) != 1 || !strings.HasPrefix(u[0], "* ESEARCH (TAG ") || !strings.HasSuffix(u[0], ") COUNT 0") {
			t.Errorf("ESEARCH %s: %q", key, u)
		}
	}
	if u := c.ok("SEARCH ALL"); len(u) != 1 || u[0] != "* SEARCH 1 2" {
		t.Errorf("SEARCH ALL: %q, want alice's two", u)
	}
	if u := c.ok("UID SEARCH RETURN (COUNT) 1:4294967295"); len(u) != 1 || !strings.HasSuffix(u[0], " UID COUNT 2") {
		t.Errorf("UID SEARCH 1:4294967295: %q", u)
	}
	// RFC 7377 multimailbox search, and the forms a client might try.
	c.refusal(`ESEARCH IN (personal) RETURN (ALL) TEXT "secret"`, "BAD")
	c.refusal(`ESEARCH IN (mailboxes "bob/INBOX" subtree "~bob") ALL`, "BAD")
	c.refusal(`SEARCH IN (personal) ALL`, "BAD")
	c.refusal(`SEARCH IN (mailboxes "../bob/INBOX") ALL`, "BAD")
	// Saved results and search contexts are alice's view.
	c.ok("SEARCH RETURN (SAVE) ALL")
	c.ok("SEARCH RETURN (UPDATE COUNT) ALL")
	c.ok("LOGOUT")
}

// isoRouteCatenate: CATENATE (RFC 4469) URLs that name bob, another
// server, or a path out of alice's mailboxes get NO [BADURL]; URLAUTH
// (RFC 4467) does not sign bob's URLs for alice, nor fetch URLs that bob
// did not sign (TestIsolationURLAuth has the URLs bob signed).
func (w *isoWorld) isoRouteCatenate(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	host := w.env.Config.Hostname
	uv := strconv.FormatUint(uint64(w.bobInbox.UIDValidity), 10)
	for _, url := range []string{
		"imap://bob@" + host + "/INBOX/;UID=1",
		"imap://bob%40example.org@" + host + "/INBOX/;UID=1",
		"imap://" + isoBob + "@" + host + "/INBOX/;UID=1",
		"imap://BOB%40EXAMPLE.ORG@" + host + "/INBOX;UIDVALIDITY=" + uv + "/;UID=1",
		"imap://bob;AUTH=*@" + host + "/INBOX/;UID=1",
		"imap://bob@" + host + "/INBOX/;UID=1;URLAUTH=anonymous",
		"imap://alice%40example.org%23phone@" + host + "/../bob/INBOX/;UID=1",
		"imap://" + host + "/../bob/INBOX/;UID=1",
		"imap://" + host + "/%2E%2E/bob/INBOX/;UID=1",
		"imap://" + host + "/~bob/INBOX/;UID=1",
		"imap://" + host + "/" + isoBobFolder + "/;UID=1",
		"imap://" + host + "/INBOX;UIDVALIDITY=" + uv + "/;UID=1",
		"imap://a1ice%40example.org@" + host + "/INBOX/;UID=1",
		"imap://%D0%B0lice%40example.org@" + host + "/INBOX/;UID=1",
		"imap://alice%40example.org@other.example/INBOX/;UID=1",
		"imap://alice%40example.org@" + host + "@evil.example/INBOX/;UID=1",
		"/../bob/INBOX/;UID=1",
		"/~bob/INBOX/;UID=1",
		"/INBOX/;UID=3",
		"/INBOX/;UID=4294967295",
		";UID=1",
	} {
		c.refusal("APPEND INBOX CATENATE (URL "+isoQuote(url)+")", "NO [BADURL", "BAD")
	}
	// The same URL forms for alice's own message work: the refusals
	// above are about whose message it is.
	c.ok("APPEND INBOX CATENATE (URL " + isoQuote("imap://alice%40example.org@"+host+"/INBOX/;UID=1") + ")")
	c.ok("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")")
	c.refusal(`GENURLAUTH "imap://bob@`+host+`/INBOX/;UID=1;urlauth=anonymous" INTERNAL`, "BAD")
	for _, u := range []string{"imap://bob@" + host + "/INBOX/;UID=1;urlauth=anonymous:internal:0123456789abcdef0123456789abcdef01234567",
		"imap://bob%40example.org@" + host + "/INBOX/;UID=1;urlauth=authuser:internal:" + strings.Repeat("0", 64)} {
		if got := c.ok("URLFETCH " + isoQuote(u)); len(got) != 1 || got[0] != "* URLFETCH "+isoQuote(u)+" NIL" {
			t.Errorf("URLFETCH of a URL bob did not sign: %q", got)
		}
	}
	c.ok("RESETKEY") // alice's own keys
	c.ok("SELECT INBOX")
	c.ok("UID EXPUNGE 3:*") // the two copies made above
	c.ok(`UID STORE 3:* +FLAGS.SILENT (\Deleted)`)
	c.ok("EXPUNGE")
	c.ok("LOGOUT")
}

// isoRouteMetadata: annotations of the server and of mailboxes are the
// account's own, /shared ones included.
func (w *isoWorld) isoRouteMetadata(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	for _, cmd := range []string{
		`GETMETADATA "" (/private/comment /shared/comment)`,
		`GETMETADATA (DEPTH infinity) "" (/private /shared)`,
		`GETMETADATA (DEPTH infinity) INBOX (/private /shared)`,
		`GETMETADATA (DEPTH infinity MAXSIZE 100000) INBOX (` + isoBobMetaName + `)`,
	} {
		for _, l := range c.ok(cmd) {
			if strings.Contains(l, "comment") || strings.Contains(l, "bobnote") {
				t.Errorf("%s: %q (alice set none of these)", cmd, l)
			}
		}
	}
	// alice's own /shared/comment does not reach bob's, nor his hers.
	c.ok(`SETMETADATA "" (/shared/comment "alice shared")`)
	c.ok(`SETMETADATA INBOX (` + isoBobMetaName + ` "alice's own")`)
	u := c.ok(`GETMETADATA "" (/shared/comment /private/comment)`)
	if len(u) != 1 || u[0] != `* METADATA "" (/shared/comment "alice shared")` {
		t.Errorf("alice's server annotations: %q", u)
	}
	c.ok(`SETMETADATA "" (/shared/comment NIL)`)
	c.ok(`SETMETADATA INBOX (` + isoBobMetaName + ` NIL)`)
	c.refusal(`SETMETADATA "" (/shared/admin "mailto:alice@example.org")`, "NO [NOPERM]")
	// Entry names are keys, not paths: this is an entry of alice's that
	// she does not have.
	if u := c.ok(`GETMETADATA "" (/private/../../bob/comment)`); len(u) != 0 {
		t.Errorf("GETMETADATA of a dotted entry: %q", u)
	}
	c.refusal(`GETMETADATA "" (/bob/private/comment)`, "BAD")
	c.refusal(`GETMETADATA "" ("/private/comment\x00")`, "BAD")
	c.ok("LOGOUT")
}

// isoRouteNotify: NOTIFY SET with filters that name bob's mailboxes is
// accepted or refused, but reports alice's mailboxes only (the events
// themselves are in TestIsolationNotifyEvents).
func (w *isoWorld) isoRouteNotify(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	for _, filter := range []string{
		"(personal (MessageNew MessageExpunge MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange))",
		`(subtree "bob" (MessageNew MessageExpunge))`,
		`(subtree ("~bob" "#shared" "Other Users") (MessageNew))`,
		`(mailboxes "bob/INBOX" (MessageNew MessageExpunge))`,
		`(mailboxes ("` + isoBob + `/INBOX" "` + isoBobFolder + `") (MessageNew))`,
		`(inboxes (MessageNew))`, `(subscribed (MessageNew))`,
	} {
		u, tagged := c.do("NOTIFY SET STATUS " + filter)
		if !strings.HasPrefix(tagged, "OK") && !strings.HasPrefix(tagged, "NO") && !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("NOTIFY SET %s: %q", filter, tagged)
		}
		for _, l := range u {
			// STATUS answers of NOTIFY SET STATUS name alice's mailboxes.
			if strings.HasPrefix(l, "* STATUS ") && !strings.HasPrefix(l, "* STATUS INBOX ") &&
				!strings.HasPrefix(l, "* STATUS "+isoAliceFolder+" ") && !isoDefaultStatus(l) {
				t.Errorf("NOTIFY SET %s: %q", filter, l)
			}
		}
		c.ok("NOTIFY NONE")
	}
	c.refusal(`NOTIFY SET (mailboxes "../bob/INBOX" (MessageNew))`, "NO [CANNOT]", "BAD")
	c.refusal("NOTIFY SET (mailboxes {10+}\r\nbob\x00INBOX! (MessageNew))", "NO [CANNOT]", "BAD")
	c.ok("LOGOUT")
}

// isoDefaultStatus reports a STATUS response of one of alice's default
// mailboxes (created with every account).
func isoDefaultStatus(l string) bool {
	for _, n := range []string{"Drafts", "Sent", "Trash", "Junk", "Archive"} {
		if strings.HasPrefix(l, "* STATUS "+n+" ") {
			return true
		}
	}
	return false
}

// isoRouteExtensions: commands of extensions that would open other
// users' mailboxes (ACL, QUOTA roots of other users) either do not exist
// or answer for alice only.
func (w *isoWorld) isoRouteExtensions(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	for _, cmd := range []string{
		`GETACL "bob/INBOX"`, `SETACL INBOX bob@example.org lrswipkxtecda`, `SETACL "~bob/INBOX" alice@example.org lrs`,
		`MYRIGHTS "~bob/INBOX"`, `LISTRIGHTS INBOX bob@example.org`, `DELETEACL INBOX anyone`,
		`GETQUOTA "` + isoBob + `"`, `GETQUOTA "user/bob"`, `GETQUOTAROOT "../bob/INBOX"`, `GETQUOTAROOT "~bob/INBOX"`,
		`SETQUOTA "` + isoBob + `" (STORAGE 1)`, `SETQUOTA "" (STORAGE 1)`,
	} {
		u, tagged := c.do(cmd)
		if !strings.HasPrefix(tagged, "NO") && !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("ROUTE NOT REFUSED: %s: %q (untagged %q)", cmd, tagged, u)
		}
		for _, l := range u {
			t.Errorf("%s: untagged data with the refusal: %q", cmd, l)
		}
		c.ok("NOOP")
	}
	c.ok("LOGOUT")
}

// isoRouteOwnNamespace: names that look like bob's are plain names of
// alice's own namespace when valid: she can create "bob/INBOX" or
// "~bob/INBOX", and what she then reaches is her own empty folder, never
// his INBOX.
func (w *isoWorld) isoRouteOwnNamespace(t *testing.T) {
	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	for _, name := range []string{"bob/INBOX", "~bob/INBOX", "#shared/bob/INBOX", isoBob + "/INBOX", "Other Users/bob/INBOX"} {
		q := isoQuote(name)
		c.ok("CREATE " + q)
		u := c.ok("SELECT " + q)
		if !slices.Contains(u, "* 0 EXISTS") {
			t.Errorf("SELECT %s after alice created it: %q, want her own empty folder", name, u)
		}
		c.ok("UID FETCH 1:* (BODY.PEEK[])")
		c.ok("UNSELECT")
		if u := c.ok("STATUS " + q + " (MESSAGES)"); len(u) != 1 || !strings.HasSuffix(u[0], "(MESSAGES 0)") {
			t.Errorf("STATUS %s: %q", name, u)
		}
		c.ok("SELECT INBOX")
		c.ok("COPY 1 " + q)
		c.ok("UNSELECT")
		if u := c.ok("STATUS " + q + " (MESSAGES)"); len(u) != 1 || !strings.HasSuffix(u[0], "(MESSAGES 1)") {
			t.Errorf("STATUS %s after COPY: %q", name, u)
		}
		c.ok("SUBSCRIBE " + q)
		c.ok("UNSUBSCRIBE " + q)
		// DELETE leaves the parent levels CREATE made: remove them too.
		for n := name; n != ""; {
			c.ok("DELETE " + isoQuote(n))
			i := strings.LastIndexByte(n, '/')
			n = n[:max(i, 0)]
		}
	}
	c.ok("LOGOUT")
}

// isoRouteGoIMAP: the same kinds of routes through go-imap v2's client,
// which quotes and encodes names its own way.
func (w *isoWorld) isoRouteGoIMAP(t *testing.T) {
	c := isoClient(t, w.env, isoAlice, isoAlicePW, w)
	isoNo := func(what string, err error, code imap.ResponseCode) {
		t.Helper()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || code != "" && ie.Code != code {
			t.Errorf("ROUTE NOT REFUSED: go-imap %s: %v, want NO [%s]", what, err, code)
		}
	}
	for _, name := range []string{"../bob/INBOX", "~bob/INBOX", "Other Users/bob/INBOX", isoBobFolder, "bob/INBOX"} {
		code := imap.ResponseCodeNonExistent
		if strings.Contains(name, "..") {
			code = imap.ResponseCodeCannot
		}
		_, err := c.Select(name, nil).Wait()
		isoNo("SELECT "+name, err, code)
		_, err = c.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
		isoNo("STATUS "+name, err, code)
		msg := isoMessage("via go-imap", isoAliceBody)
		ap := c.Append(name, int64(len(msg)), nil)
		io.WriteString(ap, msg)
		ap.Close()
		_, err = ap.Wait()
		if code == imap.ResponseCodeNonExistent {
			code = imap.ResponseCodeTryCreate
		}
		isoNo("APPEND "+name, err, code)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		_, err = c.Copy(imap.SeqSetNum(1, 2), name).Wait()
		isoNo("COPY "+name, err, code)
		_, err = c.Move(imap.UIDSetNum(1), name).Wait()
		isoNo("MOVE "+name, err, code)
	}
	for _, pat := range []string{"*", "~bob/*", "%/../*", "#shared/*"} {
		data, err := c.List("", pat, &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
		if err != nil {
			t.Errorf("LIST %s: %v", pat, err)
		}
		for _, d := range data {
			if !slices.Contains([]string{"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive", isoAliceFolder}, d.Mailbox) {
				t.Errorf("LIST %s: %q", pat, d.Mailbox)
			}
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{"secret"}}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 0 {
		t.Errorf("UID SEARCH BODY secret: %v %v", sd, err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3, 4294967295), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Errorf("UID FETCH: %v", err)
	}
	for _, m := range msgs {
		for _, b := range m.BodySection {
			if !strings.Contains(string(b.Bytes), isoAliceBody) {
				t.Errorf("UID FETCH %d: not alice's: %q", m.UID, b.Bytes)
			}
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}
}

// isoSharedBody is the body of the message bob shares with alice by
// URLAUTH: alice may read it, so it carries none of bob's marks.
const isoSharedBody = "shared-with-alice-K4"

// TestIsolationURLAuth: URLAUTH (RFC 4467) is the one way a URL crosses
// accounts, and only as its owner signed it. bob signs URLs of his
// mailboxes for himself, for the submission server acting for him or
// for alice, and for look-alikes of alice; alice, logged in over IMAP,
// fetches them and every variation of them (other UIDs, sections,
// mailboxes, owners, access identifiers, tokens), with URLFETCH and its
// RFC 5524 form and with CATENATE, tries to sign bob's URLs herself and
// resets her keys. She gets NIL or NO [BADURL] for everything except the
// one message bob signed for her; bob's keys and mail are unchanged;
// nothing of his reaches her. Through the resolver BURL will use, a URL
// bob signed for submit+alice opens for the submission server acting for
// alice only.
func TestIsolationURLAuth(t *testing.T) {
	t.Parallel()
	w := isoStart(t)
	st := w.env.Store()
	host := w.env.Config.Hostname
	owner := "imap://bob%40example.org@" + host

	b := w.bobIMAP()
	isoAppendRaw(b, "INBOX", isoMessage("shared", isoSharedBody))
	gen := func(rump string) string {
		t.Helper()
		u := b.ok("GENURLAUTH " + isoQuote(rump) + " INTERNAL")
		prefix := "* GENURLAUTH " + isoQuote(rump+":internal:")
		if len(u) != 1 || !strings.HasPrefix(u[0], prefix[:len(prefix)-1]) {
			t.Fatalf("bob's GENURLAUTH %s: %q", rump, u)
		}
		url, err := strconv.Unquote(strings.TrimPrefix(u[0], "* GENURLAUTH "))
		if err != nil {
			t.Fatalf("GENURLAUTH response %q: %v", u[0], err)
		}
		return url
	}
	shared := gen(owner + "/INBOX/;UID=4;URLAUTH=user+alice%40example.org")
	secret := map[string]string{}
	for name, rump := range map[string]string{
		"user+bob":         owner + "/INBOX/;UID=1;URLAUTH=user+bob%40example.org",
		"submit+bob":       owner + "/INBOX/;UID=1/;SECTION=TEXT;URLAUTH=submit+bob%40example.org",
		"submit+alice":     owner + "/INBOX/;UID=1;URLAUTH=submit+alice%40example.org",
		"user+a1ice":       owner + "/INBOX/;UID=1;URLAUTH=user+a1ice%40example.org",
		"user+cyrillic":    owner + "/INBOX/;UID=1;URLAUTH=user+%D0%B0lice%40example.org",
		"user+cyr-domain":  owner + "/INBOX/;UID=1;URLAUTH=user+alice%40ex%D0%B0mple.org",
		"user+puny":        owner + "/INBOX/;UID=1;URLAUTH=user+alice%40xn--exmple-4nf.org",
		"user+alice-local": owner + "/INBOX/;UID=1;URLAUTH=user+alice",
		"user+sam":         owner + "/INBOX/;UID=1;URLAUTH=user+sam%40example.org",
		"submit+long-sam":  owner + "/INBOX/;UID=1;URLAUTH=submit+%C5%BFam%40example.org",
		"user+alice-dot":   owner + "/INBOX/;UID=1;URLAUTH=user+alice%40example.org.",
		"user+alice-nul":   owner + "/INBOX/;UID=1;URLAUTH=user+alice%40example.org%00",
		"folder+bob":       owner + "/" + isoBobFolder + "/;UID=3/;SECTION=1/;PARTIAL=0.200;URLAUTH=user+bob%40example.org",
		"expired+alice":    owner + "/INBOX/;UID=1;EXPIRE=2001-01-01T00:00:00Z;URLAUTH=user+alice%40example.org",
		"bob-device-owner": "imap://bob%40example.org%23phone@" + host + "/INBOX/;UID=2;URLAUTH=user+bob%40example.org",
	} {
		secret[name] = gen(rump)
	}
	b.ok("LOGOUT")
	b.close()
	bobBefore := isoSnapshot(t, st, isoBob)

	c := w.imap(t, isoAlice, isoAlicePW)
	defer c.close()
	fetchNIL := func(what, url string) {
		t.Helper()
		for _, arg := range []string{isoQuote(url), "(" + isoQuote(url) + " BINARY BODYPARTSTRUCTURE)", "(" + isoQuote(url) + " BODY)"} {
			u, tagged := c.do("URLFETCH " + arg)
			if !strings.HasPrefix(tagged, "OK") || len(u) != 1 || u[0] != "* URLFETCH "+isoQuote(url)+" NIL" {
				t.Errorf("ROUTE NOT REFUSED: URLFETCH %s of %s: %q %q", arg, what, u, tagged)
			}
		}
	}
	catenateRefused := func(what, url string) {
		t.Helper()
		c.refusal("APPEND Drafts CATENATE (URL "+isoQuote(url)+")", "NO [BADURL")
	}
	for name, url := range secret {
		fetchNIL(name, url)
		catenateRefused(name, url)
	}

	// The one URL bob signed for her works, by URLFETCH and CATENATE.
	u := c.ok("URLFETCH " + isoQuote(shared))
	if len(u) != 1 || !strings.HasSuffix(u[0], isoSharedBody+"\r\n") {
		t.Fatalf("URLFETCH of the URL bob signed for alice: %q", u)
	}
	c.ok("APPEND Drafts CATENATE (URL " + isoQuote(shared) + ")")

	// Every change to it makes it NIL: the token covers all of it.
	tok := shared[len(shared)-64:]
	flip := func(i int) string {
		b := []byte(tok)
		b[i] = "1032547698badcfe"[strings.IndexByte("0123456789abcdef", b[i])]
		return strings.TrimSuffix(shared, tok) + string(b)
	}
	uv := strconv.FormatUint(uint64(w.bobInbox.UIDValidity), 10)
	for _, v := range []string{
		flip(0), flip(31), flip(63),
		strings.TrimSuffix(shared, tok) + tok[:32],
		strings.TrimSuffix(shared, tok) + strings.Repeat("0", 64),
		strings.Replace(shared, ";UID=4", ";UID=1", 1),
		strings.Replace(shared, ";UID=4", ";UID=4/;SECTION=HEADER", 1),
		strings.Replace(shared, ";UID=4", ";UID=4/;PARTIAL=0.100000", 1),
		strings.Replace(shared, "/INBOX/", "/"+isoBobFolder+"/", 1),
		strings.Replace(shared, "/INBOX/", "/Trash/", 1),
		strings.Replace(shared, "/INBOX/", "/INBOX;UIDVALIDITY="+uv+"/", 1),
		strings.Replace(shared, "user+alice%40example.org", "authuser", 1),
		strings.Replace(shared, "user+alice%40example.org", "anonymous", 1),
		strings.Replace(shared, "user+alice%40example.org", "user+ALICE%40EXAMPLE.ORG", 1),
		strings.Replace(shared, ";URLAUTH=", ";EXPIRE=2999-01-01T00:00:00Z;URLAUTH=", 1),
		strings.Replace(shared, "bob%40example.org@", "alice%40example.org@", 1),
		strings.Replace(shared, "bob%40example.org@", "BOB%40example.org@", 1),
		strings.Replace(shared, "bob%40example.org@", "", 1),
		strings.Replace(shared, host, "other.example", 1),
		strings.Replace(shared, ":internal:", ":xsample:", 1),
		strings.Replace(secret["submit+alice"], "submit+alice", "user+alice", 1),
		strings.Replace(secret["user+bob"], "user+bob", "user+alice", 1),
	} {
		fetchNIL("a changed URL", v)
		catenateRefused("a changed URL", v)
	}

	// alice cannot sign bob's URLs, in any spelling of his name, and
	// her own user with bob's folder is a folder she does not have: the
	// same answer as a folder nobody has.
	for _, rump := range []string{
		owner + "/INBOX/;UID=1;URLAUTH=user+alice%40example.org",
		"imap://BOB%40EXAMPLE.ORG@" + host + "/INBOX/;UID=1;URLAUTH=authuser",
		"imap://bob%40example.org%23phone@" + host + "/INBOX/;UID=1;URLAUTH=authuser",
		"imap://bob@" + host + "/INBOX/;UID=1;URLAUTH=authuser",
		"imap://" + host + "/INBOX/;UID=3;URLAUTH=authuser",
		"imap://alice%40example.org@" + host + "/../bob/INBOX/;UID=1;URLAUTH=authuser",
		"imap://alice%40example.org@" + host + "/~bob/INBOX/;UID=1;URLAUTH=authuser",
		"imap://alice%40example.org@" + host + "/INBOX/;UID=3;URLAUTH=authuser",
		"imap://a1ice%40example.org@" + host + "/INBOX/;UID=1;URLAUTH=authuser",
		"imap://%D0%B0lice%40example.org@" + host + "/INBOX/;UID=1;URLAUTH=authuser",
	} {
		c.refusal("GENURLAUTH "+isoQuote(rump)+" INTERNAL", "BAD")
	}
	ledger := "imap://alice%40example.org@" + host + "/" + isoBobFolder + "/;UID=1;URLAUTH=authuser"
	nowhere := "imap://alice%40example.org@" + host + "/Nowhere-K4/;UID=1;URLAUTH=authuser"
	_, a := c.do("GENURLAUTH " + isoQuote(ledger) + " INTERNAL")
	_, n := c.do("GENURLAUTH " + isoQuote(nowhere) + " INTERNAL")
	if strings.Replace(a, isoBobFolder, "Nowhere-K4", 1) != n {
		t.Errorf("GENURLAUTH of bob's folder name %q, of a name nobody has %q", a, n)
	}

	// Her own URL works for her (and shows her own mail), her RESETKEY
	// voids it and leaves bob's keys alone.
	own := c.ok("GENURLAUTH " + isoQuote("imap://alice%40example.org@"+host+"/INBOX/;UID=1;URLAUTH=user+alice%40example.org") + " INTERNAL")
	ownURL, _ := strconv.Unquote(strings.TrimPrefix(own[0], "* GENURLAUTH "))
	if u := c.ok("URLFETCH " + isoQuote(ownURL)); len(u) != 1 || !strings.Contains(u[0], isoAliceBody) {
		t.Errorf("alice's own URL: %q", u)
	}
	c.ok("RESETKEY INBOX")
	c.ok("RESETKEY")
	fetchNIL("alice's own URL after RESETKEY", ownURL)
	if u := c.ok("URLFETCH " + isoQuote(shared)); len(u) != 1 || !strings.HasSuffix(u[0], isoSharedBody+"\r\n") {
		t.Errorf("bob's URL for alice after alice's RESETKEY: %q", u)
	}
	c.ok("SELECT Drafts")
	c.ok(`STORE 1:* +FLAGS.SILENT (\Deleted)`)
	c.ok("EXPUNGE")
	c.ok("LOGOUT")

	// The resolver BURL will use: bob's submit+alice URL is for the
	// submission server acting for alice, and no one else.
	rs, ok := st.(imapurl.Store)
	if !ok {
		t.Fatalf("%T keeps no access keys", st)
	}
	r := imapurl.New(imapurl.Options{Store: rs, Hostname: host})
	ctx := context.Background()
	for _, q := range []struct {
		name   string
		submit bool
		url    string
		ok     bool
	}{
		{isoAlice, true, secret["submit+alice"], true},
		{isoAlice, false, secret["submit+alice"], false},
		{isoBob, true, secret["submit+alice"], false},
		{isoA1ice, true, secret["submit+alice"], false},
		{isoCyrLocal, true, secret["submit+alice"], false},
		{isoCyrDomain, true, secret["submit+alice"], false},
		{isoBob, true, secret["submit+bob"], true},
		{isoAlice, true, secret["submit+bob"], false},
		{isoAlice, true, secret["user+bob"], false},
		{isoA1ice, false, secret["user+a1ice"], true},
		{isoAlice, false, secret["user+a1ice"], false},
		{isoCyrLocal, false, secret["user+cyrillic"], true},
		{isoAlice, false, secret["user+cyrillic"], false},
		{isoCyrDomain, false, secret["user+cyr-domain"], true},
		{isoAlice, false, secret["user+cyr-domain"], false},
		{isoAlice, false, secret["user+puny"], false},
		{isoAlice, true, secret["expired+alice"], false},
		// ſam and sam are two accounts, whatever Unicode case folding
		// says.
		{isoSam, false, secret["user+sam"], true},
		{isoLongSam, false, secret["user+sam"], false},
		{isoLongSam, true, secret["submit+long-sam"], true},
		{isoSam, true, secret["submit+long-sam"], false},
	} {
		acct, err := st.Account(ctx, q.name)
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := r.Fetch(ctx, q.url, imapurl.Requester{Account: acct.ID, Name: acct.Name, Submit: q.submit})
		if q.ok != (err == nil) || err != nil && !errors.Is(err, imapurl.ErrInvalid) {
			t.Errorf("resolver: %s (submit %v) fetching %s: %v", q.name, q.submit, q.url, err)
		}
		if rc != nil {
			rc.Close()
		}
	}

	isoSameState(t, "bob", bobBefore, isoSnapshot(t, st, isoBob))
	w.checkNoLeak()
	isoCheckDataDir(t, w.env.Config.DataDir)
}
