package imapserver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// urlDraft is a draft with an attachment already on the server: what
// BURL and URLFETCH are for. Part 2 is base64 of the bytes 00 01 02 03
// 04 ff.
const urlDraft = "From: bob@example.org\nTo: carol@example.net\nSubject: Report\n" +
	"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n" +
	"--b1\nContent-Type: text/plain\n\nSee the report.\n" +
	"--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" +
	"AAECAwT/\n--b1--\n"

var genURLAuthRe = regexp.MustCompile(`"([^"]+:internal:[0-9a-f]{64})"`)

// genURLAuth runs GENURLAUTH for one rump URL and returns the URL.
func (c *client) genURLAuth(tag, rump string) string {
	c.t.Helper()
	u := c.ok(fmt.Sprintf("%s GENURLAUTH %q INTERNAL", tag, rump))
	if len(u) != 1 || !strings.HasPrefix(u[0], "* GENURLAUTH \""+rump+":internal:") {
		c.t.Fatalf("GENURLAUTH %s: %q", rump, u)
	}
	m := genURLAuthRe.FindStringSubmatch(u[0])
	if m == nil || m[1] != u[0][len("* GENURLAUTH \""):len(u[0])-1] {
		c.t.Fatalf("GENURLAUTH response %q", u[0])
	}
	return m[1]
}

// urlFetch runs URLFETCH of one URL and returns what follows the URL in
// the response ("NIL", or "{n}\r\ndata").
func (c *client) urlFetch(tag, url string) string {
	c.t.Helper()
	u := c.ok(fmt.Sprintf("%s URLFETCH %q", tag, url))
	prefix := fmt.Sprintf("* URLFETCH %q ", url)
	if len(u) != 1 || !strings.HasPrefix(u[0], prefix) {
		c.t.Fatalf("URLFETCH %s: %q", url, u)
	}
	return u[0][len(prefix):]
}

func literal(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

// TestURLAuthRoundTrip: GENURLAUTH of a part of the user's own draft, and
// URLFETCH of it in the same session and in another one that has no
// mailbox selected (RFC 4467 §6.2, §6.3, with its examples' forms).
func TestURLAuthRoundTrip(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "Drafts", urlDraft)
	c := ts.login("alice@example.org")
	caps := c.ok("a0 CAPABILITY")
	if len(caps) != 1 || !strings.Contains(caps[0], " URLAUTH URLAUTH=BINARY") {
		t.Fatalf("CAPABILITY: %q", caps)
	}
	rump := "imap://alice%40example.org@imap.test/Drafts/;UID=1/;SECTION=1;urlauth=user+alice%40example.org"
	url := c.genURLAuth("a1", rump)
	c.expect(fmt.Sprintf("a2 URLFETCH %q", url),
		fmt.Sprintf("* URLFETCH %q %s", url, literal("See the report.")),
		"a2 OK URLFETCH completed")
	// Several pairs in one GENURLAUTH, answered in one response in
	// order; the mechanism in any case.
	whole := "imap://alice%40example.org@imap.test/Drafts;UIDVALIDITY=" + c.uidValidity("Drafts") + "/;UID=1;URLAUTH=authuser"
	u := c.ok(fmt.Sprintf("a3 GENURLAUTH %q internal %q INTERNAL", whole, rump))
	if len(u) != 1 || !regexp.MustCompile(`^\* GENURLAUTH "`+regexp.QuoteMeta(whole)+`:internal:[0-9a-f]{64}" "`+
		regexp.QuoteMeta(rump)+`:internal:[0-9a-f]{64}"$`).MatchString(u[0]) {
		t.Fatalf("GENURLAUTH of two: %q", u)
	}
	wholeURL := genURLAuthRe.FindStringSubmatch(u[0])[1]
	if second := genURLAuthRe.FindAllStringSubmatch(u[0], -1)[1][1]; second != url {
		t.Fatalf("the same rump signed twice gave %q and %q", url, second)
	}
	c.ok("a4 LOGOUT")

	d := ts.login("alice@example.org")
	raw := strings.ReplaceAll(urlDraft, "\n", "\r\n")
	d.expect(fmt.Sprintf("b1 URLFETCH %q %q", url, wholeURL),
		fmt.Sprintf("* URLFETCH %q %s %q %s", url, literal("See the report."), wholeURL, literal(raw)),
		"b1 OK URLFETCH completed")
	// In the selected state too, without touching the selected mailbox.
	d.ok("b2 SELECT INBOX")
	if got := d.urlFetch("b3", url); got != literal("See the report.") {
		t.Fatalf("URLFETCH while INBOX is selected: %q", got)
	}
	d.expect("b4 NOOP", "b4 OK NOOP completed")
}

// uidValidity returns a mailbox's UIDVALIDITY by STATUS.
func (c *client) uidValidity(mailbox string) string {
	c.t.Helper()
	u := c.ok("uv STATUS " + mailbox + " (UIDVALIDITY)")
	m := regexp.MustCompile(`UIDVALIDITY (\d+)`).FindStringSubmatch(strings.Join(u, " "))
	if m == nil {
		c.t.Fatalf("STATUS %s: %q", mailbox, u)
	}
	return m[1]
}

// TestURLAuthAccess: bob signs URLs of his draft for alice, for any user
// and for the submission server; who may fetch them over IMAP (RFC 4467
// §3). No IMAP session is a submission server: submit+ URLs are NIL
// there, bob's own session included.
func TestURLAuthAccess(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	bob := ts.addUser("bob@example.org")
	ts.addUser("carol@example.org")
	ts.deliver(bob, "Drafts", urlDraft)
	ts.deliver(alice, "Drafts", "Subject: alice's\n\nalice's own\n")
	b := ts.login("bob@example.org")
	base := "imap://bob%40example.org@imap.test/Drafts/;UID=1/;SECTION=1;URLAUTH="
	text := literal("See the report.")
	urls := map[string]string{}
	for i, access := range []string{"user+alice%40example.org", "authuser", "submit+alice%40example.org", "submit+bob%40example.org", "user+bob%40example.org"} {
		urls[access] = b.genURLAuth(fmt.Sprintf("g%d", i), base+access)
	}
	sessions := map[string]*client{"alice": ts.login("alice@example.org"), "bob": b, "carol": ts.login("carol@example.org")}
	want := map[string]map[string]bool{
		"user+alice%40example.org":   {"alice": true},
		"authuser":                   {"alice": true, "bob": true, "carol": true},
		"submit+alice%40example.org": {},
		"submit+bob%40example.org":   {},
		"user+bob%40example.org":     {"bob": true},
	}
	for access, url := range urls {
		for who, c := range sessions {
			exp := "NIL"
			if want[access][who] {
				exp = text
			}
			if got := c.urlFetch("f", url); got != exp {
				t.Errorf("%s fetching %s: %q, want %q", who, access, got, exp)
			}
		}
	}
	// A CATENATE URL with URLAUTH reads bob's message for alice (RFC
	// 4469 §3); one whose access identifier is not hers is refused.
	a := sessions["alice"]
	a.ok(fmt.Sprintf("c1 APPEND Drafts CATENATE (TEXT {7+}\r\nHi.\r\n\r\n URL %q)", urls["user+alice%40example.org"]))
	a.expect(fmt.Sprintf("c2 APPEND Drafts CATENATE (URL %q)", urls["user+bob%40example.org"]),
		fmt.Sprintf("c2 NO [BADURL %q] Invalid or unknown message URL", urls["user+bob%40example.org"]))
	a.ok("c3 SELECT Drafts")
	a.expect("c4 FETCH 2 (BODY.PEEK[])", "* 2 FETCH (BODY[] "+literal("Hi.\r\n\r\nSee the report.")+")", "c4 OK FETCH completed")
	a.expect("c5 STATUS Drafts (MESSAGES)", "* STATUS Drafts (MESSAGES 2)", "c5 OK STATUS completed")
}

// TestURLAuthInvalid: URLs that are tampered with, name another
// mailbox, UIDVALIDITY, user or server, have expired, or name an
// expunged message are NIL, in a response that says nothing more; an
// EXPIRE still to come passes; URLFETCH of URLs that are not URLs at all
// is NIL too (RFC 4467 §6.3: OK for any syntactically valid command).
func TestURLAuthInvalid(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "Drafts", urlDraft)
	ts.deliver(alice, "INBOX", urlDraft)
	c := ts.login("alice@example.org")
	rump := "imap://alice%40example.org@imap.test/Drafts/;UID=1/;SECTION=1;URLAUTH=authuser"
	url := c.genURLAuth("a1", rump)
	tok := url[len(url)-64:]
	text := literal("See the report.")
	future := c.genURLAuth("a2", strings.Replace(rump, ";URLAUTH=", ";EXPIRE=2999-12-31T23:59:59Z;URLAUTH=", 1))
	past := c.genURLAuth("a3", strings.Replace(rump, ";URLAUTH=", ";EXPIRE=2001-01-01T00:00:00+02:00;URLAUTH=", 1))
	if got := c.urlFetch("b1", future); got != text {
		t.Errorf("EXPIRE in 2999: %q", got)
	}
	if got := c.urlFetch("b2", past); got != "NIL" {
		t.Errorf("EXPIRE in 2001: %q", got)
	}
	for i, bad := range []string{
		strings.TrimSuffix(url, tok) + strings.Repeat("0", 64),
		strings.TrimSuffix(url, tok) + tok[:63] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", tok[63])+1)%16]),
		strings.TrimSuffix(url, tok) + tok[:32],
		strings.Replace(url, "/Drafts/", "/INBOX/", 1),
		strings.Replace(url, ";SECTION=1", ";SECTION=2", 1),
		strings.Replace(url, "/Drafts/", "/Drafts;UIDVALIDITY=1/", 1),
		strings.Replace(url, "imap.test", "other.example", 1),
		strings.Replace(url, "alice%40example.org@", "bob%40example.org@", 1),
		strings.Replace(future, "2999", "2998", 1),
		"imap://alice%40example.org@imap.test/Drafts/;UID=1",
		"/Drafts/;UID=1",
		";UID=1",
		"not a url",
		"",
	} {
		if got := c.urlFetch(fmt.Sprintf("c%d", i), bad); got != "NIL" {
			t.Errorf("URLFETCH %q: %q", bad, got)
		}
	}
	// The message expunged: NIL, and a new GENURLAUTH says why.
	c.ok("d1 SELECT Drafts")
	c.ok(`d2 STORE 1 +FLAGS.SILENT (\Deleted)`)
	c.ok("d3 EXPUNGE")
	if got := c.urlFetch("d4", url); got != "NIL" {
		t.Errorf("URL of an expunged message: %q", got)
	}
	c.expect(fmt.Sprintf("d5 GENURLAUTH %q INTERNAL", rump), fmt.Sprintf("d5 BAD Cannot authorize %q: no message with that UID", rump))
}

// TestResetKey: RESETKEY of a mailbox (tagged OK with URLMECH, RFC 4467
// §6.1, §8) voids its URLs and no others; RESETKEY without a mailbox
// voids all; a new GENURLAUTH then signs anew.
func TestResetKey(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "Drafts", urlDraft)
	ts.deliver(alice, "INBOX", urlDraft)
	c := ts.login("alice@example.org")
	drafts := c.genURLAuth("a1", "imap://alice%40example.org@imap.test/Drafts/;UID=1;URLAUTH=authuser")
	inbox := c.genURLAuth("a2", "imap://alice%40example.org@imap.test/INBOX/;UID=1;URLAUTH=authuser")
	c.expect("a3 RESETKEY Drafts", "a3 OK [URLMECH INTERNAL] Key reset")
	if got := c.urlFetch("a4", drafts); got != "NIL" {
		t.Errorf("Drafts URL after RESETKEY Drafts: %q", got)
	}
	if got := c.urlFetch("a5", inbox); got == "NIL" {
		t.Errorf("INBOX URL after RESETKEY Drafts: %q", got)
	}
	again := c.genURLAuth("a6", "imap://alice%40example.org@imap.test/Drafts/;UID=1;URLAUTH=authuser")
	if again == drafts {
		t.Fatal("the same token after RESETKEY")
	}
	c.expect("a7 RESETKEY", "a7 OK All keys removed")
	for _, u := range []string{inbox, again} {
		if got := c.urlFetch("a8", u); got != "NIL" {
			t.Errorf("%s after RESETKEY: %q", u, got)
		}
	}
	c.expect("a9 RESETKEY INBOX internal", "a9 OK [URLMECH INTERNAL] Key reset")
	c.expect("b1 RESETKEY INBOX XSAMPLE", "b1 BAD Unknown URLAUTH mechanism XSAMPLE (postfach offers INTERNAL)")
	c.expect("b2 RESETKEY Nowhere", "b2 NO [NONEXISTENT] No such mailbox")
	c.expect("b3 RESETKEY ../x", "b3 NO [CANNOT] Invalid mailbox name: \".\" and \"..\" are not allowed as a level")
}

// TestURLFetchBinary: RFC 5524's URLFETCH parameters: BINARY decodes
// the part (a literal8), BODYPARTSTRUCTURE gives its structure, BODY the
// part as stored; BINARY of what is not a body part, or of an encoding
// the server does not know, is NIL.
func TestURLFetchBinary(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "Drafts", urlDraft)
	ts.deliver(alice, "Drafts", "Subject: odd\nContent-Transfer-Encoding: x-unknown\n\nzzz\n")
	c := ts.login("alice@example.org")
	part := c.genURLAuth("a1", "imap://alice%40example.org@imap.test/Drafts/;UID=1/;SECTION=2;URLAUTH=authuser")
	partial := c.genURLAuth("a2", "imap://alice%40example.org@imap.test/Drafts/;UID=1/;SECTION=2/;PARTIAL=1.3;URLAUTH=authuser")
	header := c.genURLAuth("a3", "imap://alice%40example.org@imap.test/Drafts/;UID=1/;SECTION=HEADER;URLAUTH=authuser")
	odd := c.genURLAuth("a4", "imap://alice%40example.org@imap.test/Drafts/;UID=2/;SECTION=1;URLAUTH=authuser")
	bin := "\x00\x01\x02\x03\x04\xff"
	structure := `("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8 NIL NIL NIL NIL)`
	c.expect(fmt.Sprintf("b1 URLFETCH (%q BINARY)", part),
		fmt.Sprintf("* URLFETCH %q (BINARY ~{6}\r\n%s)", part, bin), "b1 OK URLFETCH completed")
	c.expect(fmt.Sprintf("b2 URLFETCH (%q BODYPARTSTRUCTURE BINARY) (%q BODY) (%q BODYPARTSTRUCTURE)", part, part, part),
		fmt.Sprintf("* URLFETCH %q (BODYPARTSTRUCTURE %s) (BINARY ~{6}\r\n%s) %q (BODY {8}\r\nAAECAwT/) %q (BODYPARTSTRUCTURE %s)",
			part, structure, bin, part, part, structure),
		"b2 OK URLFETCH completed")
	c.expect(fmt.Sprintf("b3 URLFETCH (%q BINARY) %q", partial, partial),
		fmt.Sprintf("* URLFETCH %q (BINARY ~{3}\r\n\x01\x02\x03) %q {3}\r\nAEC", partial, partial), "b3 OK URLFETCH completed")
	c.expect(fmt.Sprintf("b4 URLFETCH (%q BINARY) (%q BODYPARTSTRUCTURE) (%q BINARY) (%q)", header, header, odd, odd),
		fmt.Sprintf("* URLFETCH %q (BINARY NIL) %q NIL %q (BINARY NIL) %q {5}\r\nzzz\r\n", header, header, odd, odd),
		"b4 OK URLFETCH completed")
	// An invalid URL in the extended form is NIL too.
	bad := part[:len(part)-1] + "0"
	if strings.HasSuffix(part, "0") {
		bad = part[:len(part)-1] + "1"
	}
	c.expect(fmt.Sprintf("b5 URLFETCH (%q BINARY BODYPARTSTRUCTURE)", bad), fmt.Sprintf("* URLFETCH %q NIL", bad), "b5 OK URLFETCH completed")
	c.expect(fmt.Sprintf("b6 URLFETCH (%q BINARY BODY)", part), "b6 BAD BODY and BINARY exclude each other")
	c.expect(fmt.Sprintf("b7 URLFETCH (%q SIZE)", part), "b7 BAD unknown URLFETCH parameter")
	c.ok("b8 NOOP")
}

// TestGenURLAuthRefusals: GENURLAUTH signs the session's own messages on
// this server only, and says why it does not (RFC 4467 §6.2: BAD).
func TestGenURLAuthRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	bob := ts.addUser("bob@example.org")
	ts.deliver(alice, "Drafts", urlDraft)
	ts.deliver(bob, "Drafts", urlDraft)
	c := ts.login("alice@example.org")
	h := "imap://alice%40example.org@imap.test"
	for i, r := range []struct{ rump, mech, reason string }{
		{"imap://bob%40example.org@imap.test/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "the URL must name your own user"},
		{"imap://imap.test/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "the URL must name your user (imap://USER@host/...)"},
		{"imap://alice%40example.org@other.example/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "the URL names another server"},
		{h + "/Drafts/;UID=1;URLAUTH=anonymous", "INTERNAL", "anonymous URLAUTH is not offered: use user+NAME, authuser or submit+NAME"},
		{h + "/Drafts/;UID=1;URLAUTH=authuser", "XSAMPLE", "unknown URLAUTH mechanism XSAMPLE (postfach offers INTERNAL)"},
		{h + "/Drafts/;UID=1", "INTERNAL", "the URL must end with ;URLAUTH=<access>"},
		{h + "/Nowhere/;UID=1;URLAUTH=authuser", "INTERNAL", "no such mailbox, or another UIDVALIDITY"},
		{h + "/Drafts/;UID=9;URLAUTH=authuser", "INTERNAL", "no message with that UID"},
		{h + "/Drafts;URLAUTH=authuser", "INTERNAL", "URL without ;UID="},
		{h + "/Drafts/;UID=1;URLAUTH=root", "INTERNAL", "unknown URLAUTH access identifier (known: submit+USER, user+USER, authuser, anonymous)"},
	} {
		tag := fmt.Sprintf("a%d", i)
		c.expect(fmt.Sprintf("%s GENURLAUTH %q %s", tag, r.rump, r.mech),
			fmt.Sprintf("%s BAD Cannot authorize %q: %s", tag, r.rump, r.reason))
	}
	// One refused URL refuses the command: nothing is returned.
	c.expect(fmt.Sprintf("b1 GENURLAUTH %q INTERNAL %q INTERNAL", h+"/Drafts/;UID=1;URLAUTH=authuser", h+"/Drafts/;UID=2;URLAUTH=authuser"),
		fmt.Sprintf("b1 BAD Cannot authorize %q: no message with that UID", h+"/Drafts/;UID=2;URLAUTH=authuser"))
	// Before login, none of the commands.
	d := ts.dial()
	d.expect(`x1 URLFETCH "imap://a@imap.test/INBOX/;UID=1;URLAUTH=authuser:internal:0123456789abcdef0123456789abcdef"`, "x1 BAD Log in first")
	d.expect("x2 RESETKEY", "x2 BAD Log in first")
}

// keylessStore is a store that keeps no mailbox access keys.
type keylessStore struct{ store.Store }

// TestURLAuthNeedsKeys: on a store without access keys URLAUTH is not
// advertised and its commands are not offered; CATENATE of the user's
// own URLs still works.
func TestURLAuthNeedsKeys(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *Options) { o.Store = keylessStore{o.Store} })
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "INBOX", urlDraft)
	c := ts.login("alice@example.org")
	if caps := c.ok("a1 CAPABILITY"); strings.Contains(caps[0], "URLAUTH") {
		t.Fatalf("CAPABILITY without keys: %q", caps)
	}
	c.expect(`a2 GENURLAUTH "imap://alice%40example.org@imap.test/INBOX/;UID=1;URLAUTH=authuser" INTERNAL`, "a2 BAD Command not supported")
	c.expect(`a3 URLFETCH "x"`, "a3 BAD Command not supported")
	c.expect("a4 RESETKEY", "a4 BAD Command not supported")
	c.ok(`a5 APPEND Drafts CATENATE (URL "/INBOX/;UID=1/;SECTION=1")`)
}

// TestURLAuthPythonImaplib runs testdata/imaplib_urlauth.py: Python's
// imaplib, as bob, signs a part of his draft for alice, and as alice
// fetches it, with and without BINARY; a changed token gives NIL.
func TestURLAuthPythonImaplib(t *testing.T) {
	t.Parallel()
	py := requireTool(t, "python3")
	ts := newTestServer(t)
	ts.addUser("alice@example.org")
	bob := ts.addUser("bob@example.org")
	ts.deliver(bob, "Drafts", urlDraft)
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/imaplib_urlauth.py", host, port, testPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib URLAUTH client: %v\n%s", err, out)
	}
}

// TestCatenatePartial: a CATENATE URL's ;PARTIAL=offset without a length
// takes the section from offset to its end (RFC 5092 §6: it was the
// whole section), and a negative offset, outside the grammar, is
// refused (it read bytes before the section).
func TestCatenatePartial(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.addUser("alice@example.org")
	ts.deliver(alice, "INBOX", urlDraft)
	c := ts.login("alice@example.org")
	c.ok(`a1 APPEND Drafts CATENATE (URL "/INBOX/;UID=1/;SECTION=1/;PARTIAL=4")`)
	c.ok(`a2 APPEND Drafts CATENATE (URL "/INBOX/;UID=1/;SECTION=1/;PARTIAL=4.3")`)
	c.expect(`a3 APPEND Drafts CATENATE (URL "/INBOX/;UID=1/;SECTION=1/;PARTIAL=-2.5")`,
		`a3 NO [BADURL "/INBOX/;UID=1/;SECTION=1/;PARTIAL=-2.5"] Invalid or unknown message URL`)
	c.ok("a4 SELECT Drafts")
	c.expect("a5 FETCH 1:* (BODY.PEEK[])",
		"* 1 FETCH (BODY[] "+literal("the report.")+")",
		"* 2 FETCH (BODY[] "+literal("the")+")",
		"a5 OK FETCH completed")
}
