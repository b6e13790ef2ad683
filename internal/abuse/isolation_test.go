package abuse

// The isolation suite (issue 14): one account tries to reach another's
// mail by every route it can, and is refused every time. This file holds
// the world the routes run in (accounts, mail, devices, annotations), the
// connections that record what the attacker saw, the snapshot of the
// victim's store state, and the checks made after every route: nothing of
// the victim's in anything the attacker received, the victim's state
// unchanged, and nothing under the data directory named by a client.
// The routes are in isolation_imap_test.go (IMAP over raw sockets and
// go-imap's client), isolation_login_test.go (sign-in, POP3, the web
// listener) and isolation_delivery_test.go (LMTP and SMTP, NOTIFY and
// IDLE, UNAUTHENTICATE).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// Accounts of the isolation world. alice is the attacker, bob the victim;
// the look-alikes are separate accounts whose names a careless folding
// could confuse with alice's.
const (
	isoAlice   = "alice@example.org"
	isoAlicePW = "Alice-Password-K4"
	isoBob     = "bob@example.org"
	isoBobPW   = "Bob-Password-Never-Sent-K4"
	// isoA1ice has a digit one for the l.
	isoA1ice   = "a1ice@example.org"
	isoA1icePW = "A1ice-Password-K4"
	// isoCyrLocal has a Cyrillic а (U+0430) for the first a.
	isoCyrLocal   = "\u0430lice@example.org"
	isoCyrLocalPW = "Cyrillic-Local-Password-K4"
	// isoCyrDomain has a Cyrillic а in the domain (an IDN: its A-label
	// form is xn--exmple-4nf.org).
	isoCyrDomain   = "alice@ex\u0430mple.org"
	isoCyrDomainPW = "Cyrillic-Domain-Password-K4"
	isoPunyDomain  = "alice@xn--exmple-4nf.org"
	// isoSam and isoLongSam differ by a long s (U+017F), which Unicode
	// case folding takes for an s but lower-casing leaves alone: two
	// accounts, whose names strings.EqualFold calls equal.
	isoSam       = "sam@example.org"
	isoSamPW     = "Sam-Password-K4"
	isoLongSam   = "\u017fam@example.org"
	isoLongSamPW = "Long-Sam-Password-K4"
)

// isoAccounts are the accounts of the world, with their passwords.
var isoAccounts = [][2]string{{isoAlice, isoAlicePW}, {isoBob, isoBobPW}, {isoA1ice, isoA1icePW},
	{isoCyrLocal, isoCyrLocalPW}, {isoCyrDomain, isoCyrDomainPW}, {isoSam, isoSamPW}, {isoLongSam, isoLongSamPW}}

// Markers in bob's store. alice never sends them (except where a route
// guesses one of bob's names on purpose, and then the check knows it was
// sent), so any of them in what alice received is a leak.
const (
	isoBobSubject  = "Quarterly-Ledger-Bob-K4"
	isoBobBody     = "bob-body-secret-K4"
	isoBobFolder   = "Ledger-K4"
	isoBobSub      = "Ledger-K4/Private-K4"
	isoBobKeyword  = "$BobFlagK4"
	isoBobMetaName = "/private/bobnote-k4"
	isoBobMetaVal  = "bob-meta-secret-K4"
	isoBobServVal  = "bob-server-meta-K4"
	isoBobDevice   = "bobtablet-k4"
	isoAliceBody   = "alice-body-K4"
	isoAliceFolder = "Projects"
	// isoOwnerMark begins the body of a message in each account's
	// Archive that names the account (isoConn.whose).
	isoOwnerMark = "owner-is:"
)

// isoBobMarks are the strings that must never reach alice.
var isoBobMarks = []string{isoOwnerMark + isoBob, isoBobSubject, isoBobBody, isoBobFolder, "Private-K4", "BobFlagK4", "bobnote-k4",
	isoBobMetaVal, isoBobServVal, isoBobDevice, isoBobPW}

// isoWorld is a running server with the accounts above, their mail and
// devices, and every connection alice opened.
type isoWorld struct {
	t   *testing.T
	env *testenv.Env
	// alicePhone and bobPhone are the passwords of the device "phone"
	// that each of them has; bobTablet is bob's second device's.
	alicePhone, bobPhone, bobTablet string
	bobInbox                        *store.Mailbox
	bobEmailIDs                     []string

	mu    sync.Mutex
	conns []*isoRec // alice's connections, for the leak check
}

// isoConfig switches the guessing protection off: the suite fails
// hundreds of logins on purpose from one address, and what it checks is
// the answer to each, not the delays.
func isoConfig(c *config.Config) {
	c.Auth.IPDelayAfter = 0
	c.Auth.IPBlockAfter = 0
	c.Auth.AccountDelayAfter = 0
	c.Limits.ConnectionsPerIP = 200
}

// isoStart starts a server and fills it: accounts, devices, bob's and
// alice's mail in several folders, keywords, annotations and
// subscriptions.
func isoStart(t *testing.T) *isoWorld {
	t.Helper()
	env := testenv.Start(t, testenv.Options{Config: isoConfig})
	w := &isoWorld{t: t, env: env}
	api := env.Server.Admin()
	ctx := context.Background()
	for _, u := range isoAccounts {
		if err := api.UserAdd(ctx, u[0], u[1]); err != nil {
			t.Fatalf("user add %s: %v", u[0], err)
		}
	}
	// Names that fold to an existing account's key cannot become a
	// second account: one login name never has two accounts to choose
	// from.
	for _, dup := range []string{"ALICE@EXAMPLE.ORG", "Alice@Example.Org", "al\u0130ce@example.org", "BOB@example.org"} {
		if err := api.UserAdd(ctx, dup, "x"); err == nil {
			t.Fatalf("user add %q: accepted beside an account of the same key", dup)
		}
	}
	for _, d := range []struct {
		user, dev string
		pw        *string
	}{{isoAlice, "phone", &w.alicePhone}, {isoBob, "phone", &w.bobPhone}, {isoBob, isoBobDevice, &w.bobTablet}} {
		nd, err := api.DeviceAdd(ctx, d.user, d.dev)
		if err != nil {
			t.Fatalf("device add %s %s: %v", d.user, d.dev, err)
		}
		*d.pw = nd.Password
	}

	// bob's mail: three messages in INBOX by LMTP, three in a folder of
	// his own (one of them large) below which there is another, one in
	// Trash, a keyword, annotations of the server and of his INBOX, a
	// subscription.
	for i := range 3 {
		isoLMTPDeliver(t, env, isoMessage(fmt.Sprintf("%s %d", isoBobSubject, i), isoBobBody), isoBob)
	}
	isoLMTPDeliver(t, env, isoMessage("For alice", isoAliceBody+" inbox 1"), isoAlice)
	isoLMTPDeliver(t, env, isoMessage("For alice again", isoAliceBody+" inbox 2"), isoAlice)
	bob := w.bobIMAP()
	bob.ok("CREATE " + isoQuote(isoBobSub))
	for i := range 2 {
		isoAppendRaw(bob, isoBobFolder, isoMessage(fmt.Sprintf("%s folder %d", isoBobSubject, i), isoBobBody))
	}
	isoAppendRaw(bob, isoBobSub, isoMessage(isoBobSubject+" private", isoBobBody))
	isoAppendRaw(bob, "Trash", isoMessage(isoBobSubject+" trash", isoBobBody))
	// A body large enough to be a file of the blob store.
	isoAppendRaw(bob, isoBobFolder, isoMessage(isoBobSubject+" large", isoBobBody+"\r\n"+strings.Repeat("ledger line\r\n", 20000)))
	bob.ok("SELECT INBOX")
	bob.ok(`STORE 1:2 +FLAGS (\Seen ` + isoBobKeyword + `)`)
	bob.ok(`SETMETADATA INBOX (` + isoBobMetaName + ` "` + isoBobMetaVal + `")`)
	bob.ok(`SETMETADATA "" (/private/comment "` + isoBobServVal + `" /shared/comment "` + isoBobServVal + `")`)
	bob.ok(`SUBSCRIBE "` + isoBobFolder + `"`)
	bob.ok("LOGOUT")
	bob.close()

	// alice's: two in INBOX (above), two in a folder of her own. This
	// connection is not recorded: it is set-up, not a route.
	ac := isoDialRaw(t, env, "imap", nil, "* OK")
	ac.ok("LOGIN " + isoQuote(isoAlice) + " " + isoQuote(isoAlicePW))
	ac.ok("CREATE " + isoAliceFolder)
	isoAppendRaw(ac, isoAliceFolder, isoMessage("alice project", isoAliceBody+" project"))
	isoAppendRaw(ac, isoAliceFolder, isoMessage("alice large", isoAliceBody+"\r\n"+strings.Repeat("project line\r\n", 20000)))
	ac.close()

	// Each account's Archive names its owner.
	for _, u := range isoAccounts {
		c := isoDialRaw(t, env, "imap", nil, "* OK")
		c.ok("LOGIN " + isoQuote(u[0]) + " " + isoQuote(u[1]))
		isoAppendRaw(c, "Archive", isoMessage("owner", isoOwnerMark+u[0]))
		c.close()
	}

	st := env.Store()
	b, err := st.Account(ctx, isoBob)
	if err != nil {
		t.Fatal(err)
	}
	if w.bobInbox, err = st.Mailbox(ctx, b.ID, "INBOX"); err != nil {
		t.Fatal(err)
	}
	uids, _, err := st.UIDs(ctx, b.ID, w.bobInbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	for m, err := range st.Messages(ctx, b.ID, w.bobInbox.ID, uids, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		w.bobEmailIDs = append(w.bobEmailIDs, m.EmailID)
	}
	return w
}

// isoMessage is a small message with a subject and a body line.
func isoMessage(subject, body string) string {
	return "From: someone@example.net\r\nTo: somebody@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.net>\r\n\r\n" + body + "\r\n"
}

// isoClient logs in with go-imap's client; with w, the connection is
// alice's and is recorded.
func isoClient(t *testing.T, env *testenv.Env, user, password string, w *isoWorld) *imapclient.Client {
	t.Helper()
	var conn net.Conn = env.Dial("imap")
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	if w != nil {
		conn = w.record("go-imap "+user, conn)
	}
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// isoAppendRaw appends a message on a raw connection.
func isoAppendRaw(c *isoConn, mailbox, msg string) []string {
	c.t.Helper()
	return c.ok("APPEND " + isoQuote(mailbox) + " {" + strconv.Itoa(len(msg)) + "+}\r\n" + msg)
}

// isoLMTPDeliver delivers a message by LMTP to recipients that must all
// take it.
func isoLMTPDeliver(t *testing.T, env *testenv.Env, msg string, rcpts ...string) {
	t.Helper()
	c := isoDialRaw(t, env, "lmtp", nil, "")
	defer c.close()
	c.smtp("LHLO iso.test", "250")
	c.smtp("MAIL FROM:<sender@example.net>", "250")
	for _, r := range rcpts {
		c.smtp("RCPT TO:<"+r+">", "250")
	}
	c.smtp("DATA", "354")
	c.write(strings.ReplaceAll(msg, "\r\n.", "\r\n..") + ".\r\n")
	for _, r := range rcpts {
		if l := c.line(); !strings.HasPrefix(l, "250") {
			t.Fatalf("LMTP delivery to %s: %q", r, l)
		}
	}
}

// isoRec is a connection of alice's that keeps what crossed it.
type isoRec struct {
	net.Conn
	what string
	mu   sync.Mutex
	sent bytes.Buffer // guarded by mu
	got  bytes.Buffer // guarded by mu
}

func (r *isoRec) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.got.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *isoRec) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.sent.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// record wraps one of alice's connections for the leak check.
func (w *isoWorld) record(what string, c net.Conn) *isoRec {
	r := &isoRec{Conn: c, what: what}
	w.mu.Lock()
	w.conns = append(w.conns, r)
	w.mu.Unlock()
	return r
}

// checkNoLeak fails for every marker of bob's that reached alice on a
// connection where she did not send it herself, and checks that alice
// did see her own mail (so the routes were really served).
func (w *isoWorld) checkNoLeak() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	sawOwn := false
	for _, r := range w.conns {
		r.mu.Lock()
		got, sent := r.got.String(), r.sent.String()
		r.mu.Unlock()
		sawOwn = sawOwn || strings.Contains(got, isoAliceBody)
		for _, m := range isoBobMarks {
			if i := strings.Index(got, m); i >= 0 && !strings.Contains(sent, m) {
				lo, hi := max(0, i-200), min(len(got), i+200)
				w.t.Errorf("LEAK: %q reached alice on %s: ...%q...", m, r.what, got[lo:hi])
			}
		}
	}
	if !sawOwn && len(w.conns) > 0 {
		w.t.Errorf("alice never saw her own mail on %d connections: the routes were not served", len(w.conns))
	}
}

// isoConn is a line-oriented connection: IMAP commands with tags (and
// literals in responses read whole), POP3, SMTP and LMTP lines.
type isoConn struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

// isoDialRaw connects to a listener and reads the greeting when greet is
// not "". With w, the connection is alice's and is recorded.
func isoDialRaw(t *testing.T, env *testenv.Env, listener string, w *isoWorld, greet string) *isoConn {
	t.Helper()
	var conn net.Conn = env.Dial(listener)
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	if w != nil {
		conn = w.record(listener, conn)
	}
	c := &isoConn{t: t, c: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if l := c.line(); greet != "" && !strings.HasPrefix(l, greet) {
		t.Fatalf("%s greeting: %q", listener, l)
	}
	return c
}

// imap connects alice (or whoever) over IMAP, recorded, and logs in with
// LOGIN when user is not "".
func (w *isoWorld) imap(t *testing.T, user, password string) *isoConn {
	t.Helper()
	c := isoDialRaw(t, w.env, "imap", w, "* OK")
	if user != "" {
		c.ok("LOGIN " + isoQuote(user) + " " + isoQuote(password))
	}
	return c
}

// bobIMAP is a connection of bob's own (not recorded).
func (w *isoWorld) bobIMAP() *isoConn {
	w.t.Helper()
	c := isoDialRaw(w.t, w.env, "imap", nil, "* OK")
	c.ok("LOGIN " + isoQuote(isoBob) + " " + isoQuote(isoBobPW))
	return c
}

func (c *isoConn) close() { c.c.Close() }

// whose returns the account an IMAP session is logged in to, as the
// message in its Archive names it.
func (c *isoConn) whose() string {
	c.t.Helper()
	c.ok("EXAMINE Archive")
	u := c.ok("FETCH 1 BODY.PEEK[TEXT]")
	c.ok("UNSELECT")
	for _, l := range u {
		if _, after, ok := strings.Cut(l, isoOwnerMark); ok {
			if i := strings.IndexAny(after, "\r\n "); i >= 0 {
				after = after[:i]
			}
			return after
		}
	}
	c.t.Fatalf("no owner in Archive: %q", u)
	return ""
}

func (c *isoConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// line reads one line without its CRLF.
func (c *isoConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// isoLiteral matches a literal announced at the end of a response line.
var isoLiteral = regexp.MustCompile(`~?\{(\d+)\}$`)

// response reads one IMAP response, literals and all.
func (c *isoConn) response() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l)
		m := isoLiteral.FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

// do sends an IMAP command (literals as "{n+}" LITERAL+ in cmd) and
// returns the untagged responses and the tagged one, tag removed.
func (c *isoConn) do(cmd string) (untagged []string, tagged string) {
	c.t.Helper()
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	c.write(tag + " " + cmd + "\r\n")
	for {
		r := c.response()
		if rest, ok := strings.CutPrefix(r, tag+" "); ok {
			return untagged, rest
		}
		if strings.HasPrefix(r, "+") {
			c.t.Fatalf("%s: unexpected continuation %q", isoShort(cmd), r)
		}
		untagged = append(untagged, r)
	}
}

// ok runs a command that must succeed and returns its untagged responses.
func (c *isoConn) ok(cmd string) []string {
	c.t.Helper()
	u, tagged := c.do(cmd)
	if !strings.HasPrefix(tagged, "OK") {
		c.t.Fatalf("%s: %q, want OK (untagged %q)", isoShort(cmd), tagged, u)
	}
	return u
}

// refused runs a command that must get the tagged answer want (a prefix,
// such as "NO [NONEXISTENT]" or "BAD") and returns the untagged responses.
func (c *isoConn) refused(cmd, want string) []string {
	c.t.Helper()
	u, tagged := c.do(cmd)
	if !strings.HasPrefix(tagged, want) {
		c.t.Errorf("ROUTE NOT REFUSED: %s: %q, want %q (untagged %q)", isoShort(cmd), tagged, want, u)
	}
	return u
}

// smtp sends an SMTP, LMTP or POP3 line and checks the first reply line's
// prefix; multi-line SMTP replies are read to their end.
func (c *isoConn) smtp(line, want string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	l := c.line()
	for len(l) > 3 && l[3] == '-' {
		l = c.line()
	}
	if !strings.HasPrefix(l, want) {
		c.t.Errorf("%s: %q, want %q", isoShort(line), l, want)
	}
	return l
}

// isoQuote makes an IMAP quoted string; strings that cannot be quoted
// (CR, LF, NUL, 8-bit) go as a LITERAL+ literal.
func isoQuote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// isoShort shortens a command for messages.
func isoShort(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%q... (%d bytes)", s[:120], len(s))
	}
	return strconv.Quote(s)
}

// isoSnapshot is everything the store holds for an account, one line per
// fact, for before/after comparisons.
func isoSnapshot(t *testing.T, st store.Store, name string) []string {
	t.Helper()
	ctx := context.Background()
	a, err := st.Account(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{fmt.Sprintf("account %d %q hash=%q settings=%v", a.ID, a.Name, a.PasswordHash, a.Settings)}
	mbs, err := st.Mailboxes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range append([]store.Mailbox{{}}, mbs...) {
		if mb.ID != 0 {
			stat, err := st.Status(ctx, a.ID, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("mailbox %+v status %+v", mb, *stat))
			uids, modseq, err := st.UIDs(ctx, a.ID, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("  uids %v modseq %d", uids, modseq))
			for m, err := range st.Messages(ctx, a.ID, mb.ID, uids, store.ListOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("  msg uid=%d modseq=%d flags=%v size=%d blob=%s emailid=%s date=%v",
					m.UID, m.ModSeq, m.Flags, m.Size, m.BlobID, m.EmailID, m.InternalDate.Unix()))
			}
		}
		if ak, ok := st.(store.AccessKeys); ok && mb.ID != 0 {
			// URLAUTH keys (RFC 4467), by a hash: one reset or made
			// by someone else is a change.
			key, err := ak.AccessKey(ctx, a.ID, mb.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("  access key %x", sha256.Sum256(key)))
		}
		md, err := st.Metadata(ctx, a.ID, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range slices.Sorted(mapKeys(md)) {
			out = append(out, fmt.Sprintf("  metadata %d %s=%q", mb.ID, k, md[k]))
		}
	}
	subs, err := st.Subscriptions(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("subscriptions %q", subs))
	views, err := st.POP3Views(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		out = append(out, fmt.Sprintf("pop3 view %+v", v))
	}
	if cr, ok := st.(store.Credentials); ok {
		devs, err := cr.Devices(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			out = append(out, fmt.Sprintf("device %+v", d))
		}
		sc, err := cr.AccountSCRAM(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "scram "+sc)
	}
	return out
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// isoSameState fails with the differences between two snapshots.
func isoSameState(t *testing.T, who string, before, after []string) {
	t.Helper()
	if slices.Equal(before, after) {
		return
	}
	for _, l := range before {
		if !slices.Contains(after, l) {
			t.Errorf("%s's store changed: gone: %s", who, l)
		}
	}
	for _, l := range after {
		if !slices.Contains(before, l) {
			t.Errorf("%s's store changed: new: %s", who, l)
		}
	}
}

// isoBlobName is the only form of a file under blobs/ (besides its tmp
// folder): the SHA-256 of the body, in folders of its first two bytes.
var isoBlobName = regexp.MustCompile(`^blobs/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$`)

// isoCheckDataDir checks that nothing a client sent became a path: every
// file under the data directory is one postfach names itself.
func isoCheckDataDir(t *testing.T, dir string) {
	t.Helper()
	fixed := []string{"postfach.db", "postfach.db-wal", "postfach.db-shm", "postfach.lock", "postfach.reserve",
		"auth.secret", "admin.sock", "blobs", "blobs/tmp", "tls", "tls/cert.pem", "tls/key.pem",
		"spool"} // spool: large messages while they are checked or sent (server.spoolDir)
	blobs := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".", slices.Contains(fixed, rel):
		case strings.HasPrefix(rel, "blobs/tmp/"):
		case regexp.MustCompile(`^spool/submission-[0-9]+$`).MatchString(rel):
		case d.IsDir() && regexp.MustCompile(`^blobs/[0-9a-f]{2}(/[0-9a-f]{2})?$`).MatchString(rel):
		case isoBlobName.MatchString(rel):
			m := isoBlobName.FindStringSubmatch(rel)
			if m[3][:2] != m[1] || m[3][2:4] != m[2] {
				t.Errorf("blob file in the wrong folder: %s", rel)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m[3] {
				t.Errorf("blob file %s is not named by its SHA-256", rel)
			}
			blobs++
		default:
			t.Errorf("unexpected file in the data directory: %q", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blobs == 0 {
		t.Errorf("no body files: the check of their names checked nothing")
	}
}
