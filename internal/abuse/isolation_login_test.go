package abuse

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"
)

// Sign-in routes of the isolation suite (issue 14): alice, who knows her
// own passwords (account and device), tries to become bob or one of the
// look-alike accounts, by the login name, the ADDRESS#DEVICE form, the
// SASL authorization identity, over IMAP and POP3; and the web listener
// must not tell who has an account.

// isoLoginOutcome is what a sign-in must come to.
type isoLoginOutcome int

const (
	isoRefused isoLoginOutcome = iota // NO [AUTHENTICATIONFAILED] (BAD for a malformed name)
	isoAsAlice                        // signed in, and the session is alice's own account
)

// isoLogin is a login name and password alice tries.
type isoLogin struct {
	user, password string
	want           isoLoginOutcome
}

// isoLogins are the login routes: other users' names with alice's
// passwords, ADDRESS#DEVICE tricks, case and Unicode look-alikes.
func (w *isoWorld) isoLogins() []isoLogin {
	a, ap := isoAlice, isoAlicePW
	return []isoLogin{
		{isoBob, ap, isoRefused},
		{"BOB@EXAMPLE.ORG", ap, isoRefused},
		{"bob", ap, isoRefused},
		{"bob@example.net", ap, isoRefused},
		{isoBob, w.alicePhone, isoRefused},
		{isoBob + "#phone", w.alicePhone, isoRefused},
		{isoBob + "#alice", ap, isoRefused},
		{isoBob + "#" + a, ap, isoRefused},
		{isoBob + "#phone", ap, isoRefused},
		{a + "#../bob", ap, isoRefused},
		{a + "#" + isoBob, ap, isoRefused},
		{a + "#bob/INBOX", ap, isoRefused},
		{a + "@example.org", ap, isoRefused},
		{"alice#phone@example.org", ap, isoRefused},
		{isoBob + "\x00" + a, ap, isoRefused},
		{a + "\x00" + isoBob, ap, isoRefused},
		{isoA1ice, ap, isoRefused},
		{isoCyrLocal, ap, isoRefused},
		{isoCyrDomain, ap, isoRefused},
		{isoPunyDomain, ap, isoRefused},
		{isoPunyDomain, isoCyrDomainPW, isoRefused}, // the A-label is not the account of the U-label
		{"alice@exAmple.org\u0301", ap, isoRefused},
		{"\u202egro.elpmaxe@bob", ap, isoRefused},
		{"b\u200bob@example.org", ap, isoRefused},
		{"\uff42\uff4f\uff42@example.org", ap, isoRefused}, // fullwidth
		{"\xff\xfe@example.org", ap, isoRefused},
		{"\xc0\xafbob@example.org", ap, isoRefused},
		{strings.Repeat("b", 3000) + "@example.org", ap, isoRefused},
		{isoSam, isoLongSamPW, isoRefused},
		{isoLongSam, isoSamPW, isoRefused},
		// alice's own account by other spellings: still hers, never
		// another's.
		{"ALICE@EXAMPLE.ORG", ap, isoAsAlice},
		{"Alice@Example.Org", ap, isoAsAlice},
		{"al\u0130ce@example.org", ap, isoAsAlice}, // İ lower-cases to i
		{a + "#phone", ap, isoAsAlice},
		{a + "#phone", w.alicePhone, isoAsAlice},
		{a + "#bob", ap, isoAsAlice}, // a device of alice's named bob
		{a, w.alicePhone, isoAsAlice},
		// bob's device passwords are not alice's.
		{a, w.bobPhone, isoRefused},
		{a + "#phone", w.bobPhone, isoRefused},
		{a + "#" + isoBobDevice, w.bobTablet, isoRefused},
	}
}

// TestIsolationSignIn: every login route of isoLogins over IMAP LOGIN, and
// the SASL authorization identities over IMAP AUTHENTICATE and POP3 AUTH,
// and POP3 USER/PASS: refused, or signed in to alice's own account. Then
// the web listener answers the same for bob's address as for one nobody
// has. bob's store is unchanged.
func TestIsolationSignIn(t *testing.T) {
	t.Parallel()
	w := isoStart(t)
	st := w.env.Store()
	bobBefore := isoSnapshot(t, st, isoBob)
	samBefore := isoSnapshot(t, st, isoSam)

	t.Run("imap-login", func(t *testing.T) {
		for _, l := range w.isoLogins() {
			c := w.imap(t, "", "")
			_, tagged := c.do("LOGIN " + isoQuote(l.user) + " " + isoQuote(l.password))
			w.isoCheckLogin(t, c, "LOGIN "+isoShort(l.user), tagged, l.want)
			c.close()
		}
	})
	t.Run("imap-sasl", func(t *testing.T) { w.isoRouteSASL(t) })
	t.Run("pop3", func(t *testing.T) { w.isoRoutePOP3(t) })
	t.Run("web", func(t *testing.T) { w.isoRouteWeb(t) })

	isoSameState(t, "bob", bobBefore, isoSnapshot(t, st, isoBob))
	isoSameState(t, "sam", samBefore, isoSnapshot(t, st, isoSam))
	w.checkNoLeak()
}

// isoCheckLogin checks the tagged answer to a sign-in, and for one that
// must succeed, whose session it is.
func (w *isoWorld) isoCheckLogin(t *testing.T, c *isoConn, what, tagged string, want isoLoginOutcome) {
	t.Helper()
	switch want {
	case isoRefused:
		if !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") && !strings.HasPrefix(tagged, "BAD") {
			t.Errorf("ROUTE NOT REFUSED: %s: %q", what, tagged)
			if strings.HasPrefix(tagged, "OK") {
				t.Errorf("  ... and the session is %s's", c.whose())
			}
			return
		}
		// The connection survives the refusal.
		if _, t2 := c.do("NOOP"); !strings.HasPrefix(t2, "OK") {
			t.Errorf("%s: NOOP after the refusal: %q", what, t2)
		}
	case isoAsAlice:
		if !strings.HasPrefix(tagged, "OK") {
			t.Errorf("%s: %q, want alice signed in", what, tagged)
			return
		}
		if who := c.whose(); who != isoAlice {
			t.Errorf("ROUTE NOT REFUSED: %s signed in to %s's account", what, who)
		}
	}
}

// isoPlain is a SASL PLAIN message (RFC 4616), base64.
func isoPlain(authz, authc, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + authc + "\x00" + password))
}

// isoSCRAM runs SCRAM-SHA-256 with an authorization identity over IMAP
// (tag "" means POP3's AUTH, whose continuation is "+ " too) and returns
// the final answer.
func isoSCRAM(c *isoConn, pop3 bool, user, password, authz string) string {
	c.t.Helper()
	cl, err := scram.SHA256.NewClientUnprepped(user, password, authz)
	if err != nil {
		c.t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	tag := ""
	if pop3 {
		c.write("AUTH SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte(first)) + "\r\n")
	} else {
		c.tag++
		tag = "s" + strconv.Itoa(c.tag)
		c.write(tag + " AUTHENTICATE SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte(first)) + "\r\n")
	}
	for {
		l := c.line()
		if !strings.HasPrefix(l, "+ ") {
			return strings.TrimPrefix(l, tag+" ")
		}
		ch, _ := base64.StdEncoding.DecodeString(l[2:])
		resp, err := conv.Step(string(ch))
		if err != nil {
			c.write("*\r\n")
			return "client: " + err.Error() + " / " + c.line()
		}
		c.write(base64.StdEncoding.EncodeToString([]byte(resp)) + "\r\n")
	}
}

// isoRouteSASL: authorization identities other than the user signing in
// are refused, whatever the mechanism; an authzid that is the user's own
// name in another case is the user.
func (w *isoWorld) isoRouteSASL(t *testing.T) {
	type sasl struct {
		authz, authc, password string
		want                   isoLoginOutcome
	}
	routes := []sasl{
		{isoBob, isoAlice, isoAlicePW, isoRefused},
		{"BOB@EXAMPLE.ORG", isoAlice, isoAlicePW, isoRefused},
		{isoBob + "#phone", isoAlice, isoAlicePW, isoRefused},
		{isoBob, isoAlice + "#phone", w.alicePhone, isoRefused},
		{isoAlice, isoBob, isoAlicePW, isoRefused},
		{isoCyrLocal, isoAlice, isoAlicePW, isoRefused},
		{isoA1ice, isoAlice, isoAlicePW, isoRefused},
		{"*", isoAlice, isoAlicePW, isoRefused},
		{"bob", isoAlice, isoAlicePW, isoRefused},
		// The accounts sam and ſam: Unicode case folding takes one name
		// for the other, the store does not.
		{isoSam, isoLongSam, isoLongSamPW, isoRefused},
		{isoLongSam, isoSam, isoSamPW, isoRefused},
		{"ALICE@EXAMPLE.ORG", isoAlice, isoAlicePW, isoAsAlice},
		{isoAlice, isoAlice, isoAlicePW, isoAsAlice},
	}
	for _, r := range routes {
		what := "AUTHENTICATE PLAIN authzid=" + isoShort(r.authz) + " authcid=" + isoShort(r.authc)
		c := w.imap(t, "", "")
		_, tagged := c.do("AUTHENTICATE PLAIN " + isoPlain(r.authz, r.authc, r.password))
		w.isoCheckSASL(t, c, what, tagged, r.want, r.authc)
		c.close()

		what = "AUTHENTICATE SCRAM-SHA-256 a=" + isoShort(r.authz) + " n=" + isoShort(r.authc)
		c = w.imap(t, "", "")
		w.isoCheckSASL(t, c, what, isoSCRAM(c, false, r.authc, r.password, r.authz), r.want, r.authc)
		c.close()

		p := isoDialRaw(t, w.env, "pop3", w, "+OK")
		l := p.smtp("AUTH PLAIN "+isoPlain(r.authz, r.authc, r.password), "")
		w.isoCheckPOP3(t, p, "POP3 AUTH PLAIN authzid="+isoShort(r.authz)+" authcid="+isoShort(r.authc), l, r.want, r.authc)
		p.close()
		p = isoDialRaw(t, w.env, "pop3", w, "+OK")
		l = isoSCRAM(p, true, r.authc, r.password, r.authz)
		w.isoCheckPOP3(t, p, "POP3 AUTH SCRAM-SHA-256 a="+isoShort(r.authz)+" n="+isoShort(r.authc), l, r.want, r.authc)
		p.close()
	}
	// An IMAP URL names its user too: in ſam's session a CATENATE URL of
	// sam's is another user's, even though it would be served from ſam's
	// own mailbox (RFC 4469 §4.1: BADURL).
	c := w.imap(t, isoLongSam, isoLongSamPW)
	host := w.env.Config.Hostname
	c.refusal("APPEND INBOX CATENATE (URL "+isoQuote("imap://sam%40example.org@"+host+"/Archive/;UID=1")+")", "NO [BADURL")
	c.refusal("APPEND INBOX CATENATE (URL "+isoQuote("imap://SAM%40EXAMPLE.ORG@"+host+"/Archive/;UID=1")+")", "NO [BADURL")
	c.ok("APPEND INBOX CATENATE (URL " + isoQuote("imap://%C5%BFam%40example.org@"+host+"/Archive/;UID=1") + ")")
	c.close()
}

// isoCheckSASL is isoCheckLogin for an exchange whose user is authc: the
// session must be authc's (a look-alike's own is not alice's).
func (w *isoWorld) isoCheckSASL(t *testing.T, c *isoConn, what, tagged string, want isoLoginOutcome, authc string) {
	t.Helper()
	if want == isoRefused {
		w.isoCheckLogin(t, c, what, tagged, isoRefused)
		return
	}
	if !strings.HasPrefix(tagged, "OK") {
		t.Errorf("%s: %q, want signed in", what, tagged)
		return
	}
	if who := c.whose(); !strings.EqualFold(who, authc) {
		t.Errorf("%s signed in to %s's account", what, who)
	}
}

// isoCheckPOP3 checks a POP3 sign-in's answer; a session that must be
// alice's lists her INBOX.
func (w *isoWorld) isoCheckPOP3(t *testing.T, p *isoConn, what, l string, want isoLoginOutcome, authc string) {
	t.Helper()
	if want == isoRefused {
		if !strings.HasPrefix(l, "-ERR") {
			t.Errorf("ROUTE NOT REFUSED: %s: %q", what, l)
		}
		return
	}
	if !strings.HasPrefix(l, "+OK") {
		t.Errorf("%s: %q, want signed in", what, l)
		return
	}
	if authc == isoAlice {
		p.smtp("RETR 1", "+OK")
		body := isoPOP3Multi(p)
		if !strings.Contains(body, isoAliceBody) {
			t.Errorf("%s: RETR 1 is not alice's: %q", what, body)
		}
	}
	isoPOP3Quit(p)
}

// isoPOP3Quit ends a POP3 session and waits for the server to close it,
// so that the maildrop is free for the next.
func isoPOP3Quit(p *isoConn) {
	p.t.Helper()
	p.smtp("QUIT", "+OK")
	if n, err := p.r.Read(make([]byte, 1)); err == nil || n > 0 {
		p.t.Errorf("POP3 connection open after QUIT")
	}
}

// isoPOP3Multi reads a POP3 multi-line answer after its status line.
func isoPOP3Multi(p *isoConn) string {
	var b strings.Builder
	for l := p.line(); l != "."; l = p.line() {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// isoRoutePOP3: USER/PASS with the login routes, APOP, and, once signed
// in, commands that could name another maildrop or message numbers
// beyond alice's.
func (w *isoWorld) isoRoutePOP3(t *testing.T) {
	for _, l := range w.isoLogins() {
		if strings.ContainsAny(l.user, "\x00\r\n ") {
			continue // not a POP3 argument; BAD-like, checked below
		}
		p := isoDialRaw(t, w.env, "pop3", w, "+OK")
		p.smtp("USER "+l.user, "+OK")
		r := p.smtp("PASS "+l.password, "")
		w.isoCheckPOP3(t, p, "POP3 USER "+isoShort(l.user), r, l.want, isoAlice)
		p.close()
	}
	p := isoDialRaw(t, w.env, "pop3", w, "+OK")
	p.smtp("APOP "+isoBob+" 0123456789abcdef0123456789abcdef", "-ERR")
	p.smtp("USER "+isoBob+"\x00"+isoAlice, "")
	p.smtp("PASS "+isoAlicePW, "-ERR")
	p.smtp("USER "+isoAlice, "+OK")
	p.smtp("PASS "+isoAlicePW, "+OK")
	// Signed in: no second identity, and only alice's two messages.
	p.smtp("USER "+isoBob, "-ERR")
	p.smtp("PASS x", "-ERR")
	p.smtp("AUTH PLAIN "+isoPlain("", isoBob, "x"), "-ERR")
	p.smtp("STAT", "+OK 2 ")
	for _, n := range []string{"3", "0", "-1", "4294967295", "4294967296", "99999999999999999999", "1 2"} {
		p.smtp("RETR "+n, "-ERR")
		p.smtp("TOP "+n+" 0", "-ERR")
		p.smtp("DELE "+n, "-ERR")
	}
	p.smtp("UIDL", "+OK")
	if u := isoPOP3Multi(p); strings.Count(u, "\n") != 2 {
		t.Errorf("UIDL: %q", u)
	}
	p.smtp("RETR 2", "+OK")
	if b := isoPOP3Multi(p); !strings.Contains(b, isoAliceBody) {
		t.Errorf("RETR 2: %q", b)
	}
	p.smtp("RSET", "+OK")
	isoPOP3Quit(p)
}

// isoRouteWeb: autoconfig and autodiscover answer the same for bob's
// address, a look-alike's and one nobody has (the address aside), so the
// web listener does not tell who has an account.
func (w *isoWorld) isoRouteWeb(t *testing.T) {
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	addr := w.env.Addr("web")
	fetch := func(req *http.Request, who string) (int, string) {
		t.Helper()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("web %s: %v", req.URL.Path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.ReplaceAll(string(b), who, "ADDRESS")
	}
	var firstAC, firstAD string
	for i, who := range []string{isoBob, isoAlice, "nobody-k4@example.org", isoA1ice, "BOB@example.org"} {
		req, _ := http.NewRequest("GET", "https://"+addr+"/mail/config-v1.1.xml?emailaddress="+who, nil)
		code, ac := fetch(req, who)
		body := "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>" +
			who + "</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
		req, _ = http.NewRequest("POST", "https://"+addr+"/autodiscover/autodiscover.xml", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml")
		code2, ad := fetch(req, who)
		if code != http.StatusOK || code2 != http.StatusOK {
			t.Errorf("web for %s: autoconfig %d, autodiscover %d", who, code, code2)
		}
		if i == 0 {
			firstAC, firstAD = ac, ad
			continue
		}
		if ac != firstAC {
			t.Errorf("autoconfig for %s differs from bob's:\n%s\n%s", who, ac, firstAC)
		}
		if ad != firstAD {
			t.Errorf("autodiscover for %s differs from bob's:\n%s\n%s", who, ad, firstAD)
		}
	}
}
