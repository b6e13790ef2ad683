package imapurl

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

const (
	testHost = "mail.example.org"
	alice    = "alice@example.org"
	bob      = "bob@example.org"
)

// draft is bob's draft with an attachment already on the server: the
// case BURL is for.
const draft = "From: bob@example.org\r\nTo: carol@example.net\r\nSubject: Report\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n" +
	"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"AAECAwT/\r\n--b1--\r\n"

type world struct {
	t      *testing.T
	st     *sqlite.Store
	r      *Resolver
	now    time.Time
	mu     sync.Mutex
	accts  map[string]store.AccountID
	drafts map[string]*store.Mailbox
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC),
		accts: map[string]store.AccountID{}, drafts: map[string]*store.Mailbox{}}
	w.r = New(Options{Store: st, Hostname: testHost + ".", Now: func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.now
	}})
	for _, name := range []string{alice, bob} {
		a, err := st.CreateAccount(ctx, name, "x")
		if err != nil {
			t.Fatal(err)
		}
		w.accts[name] = a.ID
		w.drafts[name], err = st.Mailbox(ctx, a.ID, "Drafts")
		if err != nil {
			t.Fatal(err)
		}
		w.append(name, "Drafts", draft)
	}
	return w
}

func (w *world) append(user, mailbox, msg string) mail.UID {
	w.t.Helper()
	ctx := context.Background()
	mb, err := w.st.Mailbox(ctx, w.accts[user], mailbox)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := w.st.Stage(ctx, strings.NewReader(msg), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	defer b.Discard()
	res, err := w.st.Append(ctx, w.accts[user], mb.ID, []store.NewMessage{{Body: b}})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.UIDs[0]
}

func (w *world) req(user string, submit bool) Requester {
	return Requester{Account: w.accts[user], Name: user, Submit: submit}
}

// authorize signs a rump URL as user and fails the test on a refusal.
func (w *world) authorize(user, rump string) string {
	w.t.Helper()
	full, err := w.r.Authorize(context.Background(), rump, "INTERNAL", w.req(user, false))
	if err != nil {
		w.t.Fatalf("Authorize(%q) as %s: %v", rump, user, err)
	}
	return full
}

// fetch returns the bytes of a URL for a requester, or "NIL" for
// ErrInvalid.
func (w *world) fetch(url string, req Requester) string {
	w.t.Helper()
	rc, n, err := w.r.Fetch(context.Background(), url, req)
	if errors.Is(err, ErrInvalid) {
		return "NIL"
	}
	if err != nil {
		w.t.Fatalf("Fetch(%q): %v", url, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || int64(len(b)) != n {
		w.t.Fatalf("Fetch(%q): %d bytes of %d, %v", url, len(b), n, err)
	}
	return string(b)
}

// TestBURLSubmit is the BURL case (RFC 4468): bob signs the attachment
// of his draft for submit+bob; the submission server, acting for bob,
// fetches it. Acting for alice it cannot, nor can any IMAP session, bob's
// own included (no IMAP session is a submission server).
func TestBURLSubmit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	base := "imap://bob%40example.org@" + testHost + "/Drafts/;UID=1"
	part := w.authorize(bob, base+"/;SECTION=2;URLAUTH=submit+bob%40example.org")
	if !strings.HasPrefix(part, base+"/;SECTION=2;URLAUTH=submit+bob%40example.org:internal:") ||
		len(part) != len(base+"/;SECTION=2;URLAUTH=submit+bob%40example.org:internal:")+64 {
		t.Fatalf("authorized URL %q", part)
	}
	if got := w.fetch(part, w.req(bob, true)); got != "AAECAwT/" {
		t.Fatalf("submit for bob: %q", got)
	}
	whole := w.authorize(bob, base+";URLAUTH=submit+bob%40example.org")
	if got := w.fetch(whole, w.req(bob, true)); got != draft {
		t.Fatalf("submit for bob, whole draft: %q", got)
	}
	for _, req := range []Requester{w.req(alice, true), w.req(bob, false), w.req(alice, false), {Submit: true}} {
		if got := w.fetch(part, req); got != "NIL" {
			t.Errorf("submit+bob URL for %+v: %q", req, got)
		}
	}
	// The device form of the user is the same account.
	dev := w.authorize(bob, "imap://bob%40example.org%23phone@"+testHost+"/Drafts/;UID=1;URLAUTH=submit+BOB%40EXAMPLE.ORG%23tablet")
	if got := w.fetch(dev, w.req(bob, true)); got != draft {
		t.Fatalf("device forms: %q", got)
	}
}

// TestAccessIdentifiers: who may use a URL of bob's, by its access
// identifier (RFC 4467 §3). A URL signed by bob for submit+alice is
// fetchable by the submission server acting for alice only.
func TestAccessIdentifiers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rump := "imap://bob%40example.org@" + testHost + "/Drafts/;UID=1/;SECTION=1;URLAUTH="
	const text = "See the report."
	cases := []struct {
		access string
		want   map[Requester]bool
	}{
		{"submit+alice%40example.org", map[Requester]bool{w.req(alice, true): true}},
		{"user+alice%40example.org", map[Requester]bool{w.req(alice, false): true, w.req(alice, true): true}},
		{"user+bob%40example.org", map[Requester]bool{w.req(bob, false): true, w.req(bob, true): true}},
		{"authuser", map[Requester]bool{w.req(alice, false): true, w.req(alice, true): true, w.req(bob, false): true, w.req(bob, true): true}},
	}
	for _, c := range cases {
		url := w.authorize(bob, rump+c.access)
		for _, req := range []Requester{w.req(alice, false), w.req(alice, true), w.req(bob, false), w.req(bob, true), {}} {
			want := "NIL"
			if c.want[req] {
				want = text
			}
			if got := w.fetch(url, req); got != want {
				t.Errorf("%s for %s (submit %v): %q, want %q", c.access, req.Name, req.Submit, got, want)
			}
		}
	}
	// anonymous is not offered, and a URL that claims it is not taken.
	_, err := w.r.Authorize(context.Background(), rump+"anonymous", "INTERNAL", w.req(bob, false))
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Reason, "anonymous") {
		t.Errorf("Authorize anonymous: %v", err)
	}
	auth := w.authorize(bob, rump+"authuser")
	forged := strings.Replace(auth, "authuser", "anonymous", 1)
	if got := w.fetch(forged, w.req(alice, false)); got != "NIL" {
		t.Errorf("anonymous: %q", got)
	}
}

// TestAuthorizeRefusals: GENURLAUTH signs the requester's own messages
// only, on this server, with the INTERNAL mechanism, and says why it
// does not.
func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := testHost
	for _, c := range []struct{ rump, mech, reason string }{
		{"imap://bob%40example.org@" + h + "/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "your own user"},
		{"imap://BOB%40example.org@" + h + "/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "your own user"},
		{"imap://" + h + "/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "name your user"},
		{"imap://alice%40example.org@other.example/Drafts/;UID=1;URLAUTH=authuser", "INTERNAL", "another server"},
		{"imap://alice%40example.org@" + h + "/Drafts/;UID=1;URLAUTH=authuser", "XSAMPLE", "mechanism"},
		{"imap://alice%40example.org@" + h + "/Drafts/;UID=1", "INTERNAL", ";URLAUTH="},
		{"imap://alice%40example.org@" + h + "/Drafts/;UID=1;URLAUTH=authuser:internal:0123456789abcdef0123456789abcdef", "INTERNAL", "authorized already"},
		{"imap://alice%40example.org@" + h + "/Nowhere/;UID=1;URLAUTH=authuser", "INTERNAL", "no such mailbox"},
		{"imap://alice%40example.org@" + h + "/Drafts;UIDVALIDITY=1/;UID=1;URLAUTH=authuser", "INTERNAL", "UIDVALIDITY"},
		{"imap://alice%40example.org@" + h + "/Drafts/;UID=2;URLAUTH=authuser", "INTERNAL", "no message"},
		{"imap://alice%40example.org@" + h + "/Drafts/;UID=1;URLAUTH=whoever", "INTERNAL", "access identifier"},
		{"/Drafts/;UID=1", "INTERNAL", "absolute"},
		{"imap://alice%40example.org@" + h + "/Drafts", "INTERNAL", "mailbox"},
	} {
		_, err := w.r.Authorize(context.Background(), c.rump, c.mech, w.req(alice, false))
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Reason, c.reason) {
			t.Errorf("Authorize(%q, %s): %v, want a refusal about %q", c.rump, c.mech, err, c.reason)
		}
	}
	// The address the client connected to names the server too.
	req := w.req(alice, false)
	req.Local = netip.MustParseAddr("192.0.2.7")
	if _, err := w.r.Authorize(context.Background(), "imap://alice%40example.org@192.0.2.7/Drafts/;UID=1;URLAUTH=authuser", "internal", req); err != nil {
		t.Errorf("URL of the local address: %v", err)
	}
}

// TestTokenIntegrity: every change to a signed URL, a reset key, a
// deleted and recreated mailbox (a new UIDVALIDITY), an expunged message
// and an expired URL make it invalid.
func TestTokenIntegrity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	rump := "imap://bob%40example.org@" + testHost + "/Drafts/;UID=1/;SECTION=1;URLAUTH=user+alice%40example.org"
	url := w.authorize(bob, rump)
	alice := w.req(alice, false)
	if got := w.fetch(url, alice); got != "See the report." {
		t.Fatalf("valid URL: %q", got)
	}
	tok := url[strings.LastIndexByte(url, ':')+1:]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	uv := w.drafts[bob].UIDValidity
	for _, bad := range []string{
		strings.TrimSuffix(url, tok) + flip(tok, 0),
		strings.TrimSuffix(url, tok) + flip(tok, 63),
		strings.TrimSuffix(url, tok) + tok[:32],
		strings.TrimSuffix(url, tok) + tok + "00",
		strings.Replace(url, ";SECTION=1", ";SECTION=2", 1),
		strings.Replace(url, "/;SECTION=1", "", 1),
		strings.Replace(url, ";SECTION=1", ";SECTION=1/;PARTIAL=0.4", 1),
		strings.Replace(url, "/Drafts/", "/INBOX/", 1),
		strings.Replace(url, "/Drafts/", "/drafts/", 1),
		strings.Replace(url, ";UID=1", ";UID=2", 1),
		strings.Replace(url, "/Drafts/", "/Drafts;UIDVALIDITY="+itoa(uv+1)+"/", 1),
		strings.Replace(url, "/Drafts/", "/Drafts;UIDVALIDITY="+itoa(uv)+"/", 1), // not in the signed rump
		strings.Replace(url, "bob%40example.org@", "alice%40example.org@", 1),
		strings.Replace(url, "user+alice", "authuser+alice", 1),
		strings.Replace(url, ":internal:", ":xsample:", 1),
		strings.Replace(url, testHost, "other.example", 1),
		strings.Replace(url, ";URLAUTH=", ";EXPIRE=2040-01-01T00:00:00Z;URLAUTH=", 1),
	} {
		if got := w.fetch(bad, alice); got != "NIL" {
			t.Errorf("changed URL %q: %q", bad, got)
		}
	}
	// Upper-case hex and another case of the mechanism are the same token.
	if got := w.fetch(strings.TrimSuffix(strings.Replace(url, ":internal:", ":INTERNAL:", 1), tok)+strings.ToUpper(tok), alice); got != "See the report." {
		t.Errorf("upper-case token: %q", got)
	}

	// The same rump in bob's INBOX gets another token (another key).
	w.append(bob, "INBOX", draft)
	inboxRump := strings.Replace(rump, "/Drafts/", "/INBOX/", 1)
	inbox := w.authorize(bob, inboxRump)
	if inbox[strings.LastIndexByte(inbox, ':')+1:] == tok {
		t.Fatal("two mailboxes gave one token")
	}
	// A key of another mailbox does not verify.
	if got := w.fetch(inboxRump+":internal:"+tok, alice); got != "NIL" {
		t.Errorf("Drafts token on INBOX: %q", got)
	}

	// EXPIRE: valid before, invalid from then on.
	exp := w.authorize(bob, strings.Replace(rump, ";URLAUTH=", ";EXPIRE=2030-01-01T13:00:00+01:00;URLAUTH=", 1))
	w.mu.Lock()
	w.now = time.Date(2030, 1, 1, 11, 59, 59, 0, time.UTC)
	w.mu.Unlock()
	if got := w.fetch(exp, alice); got != "See the report." {
		t.Errorf("before EXPIRE: %q", got)
	}
	w.mu.Lock()
	w.now = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	w.mu.Unlock()
	if got := w.fetch(exp, alice); got != "NIL" {
		t.Errorf("at EXPIRE: %q", got)
	}
	if got := w.fetch(url, alice); got != "See the report." {
		t.Errorf("URL without EXPIRE: %q", got)
	}

	// RESETKEY of the mailbox voids its URLs, not those of others.
	if err := w.st.ResetAccessKeys(ctx, w.accts[bob], w.drafts[bob].ID); err != nil {
		t.Fatal(err)
	}
	if got := w.fetch(url, alice); got != "NIL" {
		t.Errorf("after RESETKEY: %q", got)
	}
	if got := w.fetch(inbox, alice); got != "See the report." {
		t.Errorf("INBOX URL after RESETKEY of Drafts: %q", got)
	}
	url2 := w.authorize(bob, rump)
	if url2 == url {
		t.Fatal("the same token after RESETKEY")
	}

	// An expunged message: NIL.
	if _, err := w.st.Expunge(ctx, w.accts[bob], w.drafts[bob].ID, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := w.fetch(url2, alice); got != "NIL" {
		t.Errorf("expunged message: %q", got)
	}

	// A deleted mailbox, made again under the name (another
	// UIDVALIDITY, and for a while the same UIDs): NIL.
	x, err := w.st.CreateMailbox(ctx, w.accts[bob], "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.append(bob, "x", draft)
	xRump := strings.Replace(rump, "/Drafts/", "/x/", 1)
	xURL := w.authorize(bob, xRump)
	if err := w.st.DeleteMailbox(ctx, w.accts[bob], x.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.CreateMailbox(ctx, w.accts[bob], "x", nil); err != nil {
		t.Fatal(err)
	}
	w.append(bob, "x", draft)
	if got := w.fetch(xURL, alice); got != "NIL" {
		t.Errorf("URL of a deleted mailbox, on its successor: %q", got)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestPartBinary: the parts RFC 5524 asks for: the part as stored, its
// decoded content, its structure; partial ranges of both.
func TestPartBinary(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	alice := w.req(alice, false)
	open := func(rumpTail string) *Part {
		t.Helper()
		url := w.authorize(bob, "imap://bob%40example.org@"+testHost+"/Drafts/;UID=1"+rumpTail+";URLAUTH=user+alice%40example.org")
		p, err := w.r.Open(ctx, url, alice)
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	read := func(r io.Reader, n int64, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil || int64(len(b)) != n {
			t.Fatalf("%d bytes of %d: %v", len(b), n, err)
		}
		return string(b)
	}
	p := open("/;SECTION=2")
	if got := read(p.Open()); got != "AAECAwT/" {
		t.Errorf("BODY: %q", got)
	}
	if got := read(p.OpenBinary()); got != "\x00\x01\x02\x03\x04\xff" {
		t.Errorf("BINARY: %q", got)
	}
	if s := p.Structure(); s == nil || s.Type != "application" || s.Subtype != "octet-stream" || s.Encoding != "base64" {
		t.Errorf("structure %+v", s)
	}
	p = open("/;SECTION=2/;PARTIAL=1.3")
	if got := read(p.Open()); got != "AEC" {
		t.Errorf("BODY partial: %q", got)
	}
	if got := read(p.OpenBinary()); got != "\x01\x02\x03" {
		t.Errorf("BINARY partial: %q", got)
	}
	p = open("/;SECTION=2/;PARTIAL=5")
	if got := read(p.Open()); got != "wT/" {
		t.Errorf("BODY partial to the end: %q", got)
	}
	p = open("/;SECTION=HEADER.FIELDS%20(Subject)")
	if got := read(p.Open()); got != "Subject: Report\r\n\r\n" {
		t.Errorf("header fields: %q", got)
	}
	if _, _, err := p.OpenBinary(); !errors.Is(err, ErrNotPart) {
		t.Errorf("BINARY of a header: %v", err)
	}
	if p.Structure() != nil {
		t.Error("structure of a header")
	}
	p = open("")
	if s := p.Structure(); s == nil || s.Type != "multipart" {
		t.Errorf("structure of the message: %+v", s)
	}
	p = open("/;SECTION=3")
	if got := read(p.Open()); got != "" {
		t.Errorf("a part that does not exist: %q", got)
	}
	if _, _, err := p.OpenBinary(); !errors.Is(err, ErrNotPart) {
		t.Errorf("BINARY of a part that does not exist: %v", err)
	}
	// An encoding the server does not know.
	w.append(bob, "Drafts", "Subject: x\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzzz\r\n")
	url := w.authorize(bob, "imap://bob%40example.org@"+testHost+"/Drafts/;UID=2/;SECTION=1;URLAUTH=authuser")
	q, err := w.r.Open(ctx, url, alice)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, _, err := q.OpenBinary(); !errors.Is(err, imap.ErrUnknownCTE) {
		t.Errorf("unknown encoding: %v", err)
	}
}

// TestOpenOwn: URLs without URLAUTH (CATENATE) reach the requester's
// own account only.
func TestOpenOwn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	req := w.req(alice, false)
	req.Local = netip.MustParseAddr("127.0.0.1")
	sel := w.drafts[alice]
	for raw, ok := range map[string]bool{
		"/Drafts/;UID=1":                                         true,
		";UID=1/;SECTION=1":                                      true,
		"imap://" + testHost + "/Drafts/;UID=1":                  true,
		"imap://ALICE%40example.org@127.0.0.1:143/Drafts/;UID=1": true,
		"imap://alice%40example.org%23phone;AUTH=*@" + testHost + "/Drafts/;UID=1": true,
		"imap://bob%40example.org@" + testHost + "/Drafts/;UID=1":                  false,
		"imap://alice%40example.org@other.example/Drafts/;UID=1":                   false,
		"imap://alice%40example.org@127.0.0.2/Drafts/;UID=1":                       false,
		"/Drafts/;UID=2":               false,
		"/Nowhere/;UID=1":              false,
		"/../bob/Drafts/;UID=1":        false,
		"/Drafts;UIDVALIDITY=1/;UID=1": false,
		"imap://" + testHost + "/Drafts/;UID=1;URLAUTH=authuser": false,
	} {
		u, err := Parse(raw)
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		p, err := w.r.OpenOwn(ctx, u, req, sel)
		if ok != (err == nil) {
			t.Errorf("OpenOwn(%q): %v", raw, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("OpenOwn(%q): %v, want ErrInvalid", raw, err)
			}
			continue
		}
		p.Close()
	}
	u, _ := Parse(";UID=1")
	if _, err := w.r.OpenOwn(ctx, u, req, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative URL without a selected mailbox: %v", err)
	}
}
