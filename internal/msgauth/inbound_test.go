//go:debug rsa1024min=0

package msgauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/store"
)

// The sending side of these tests: example.com's server at 192.0.2.10.
var senderIP = netip.MustParseAddr("192.0.2.10")

const ourHost = "mx.test.example"

// inboundEnv is a test DNS server and a Checker on it.
type inboundEnv struct {
	t   *testing.T
	dns *dnstest.Server
	opt CheckOptions
}

func newInboundEnv(t *testing.T, records ...string) *inboundEnv {
	t.Helper()
	d := dnstest.New(t, records...)
	return &inboundEnv{t: t, dns: d, opt: CheckOptions{Hostname: ourHost, LocalDomains: []string{"example.org"},
		SPF: true, DKIM: true, DMARC: true, DMARCReject: true}}
}

// check runs a fresh Checker (no cache shared between cases) on msg.
func (e *inboundEnv) check(mailFrom, helo string, msg []byte) *Verdict {
	e.t.Helper()
	res, err := dnsr.New(dnsr.Options{Servers: []string{e.dns.Addr}, CacheSize: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	o := e.opt
	o.Resolver = res
	v, err := NewChecker(o).Check(context.Background(), &Input{RemoteIP: senderIP, Helo: helo, MailFrom: mailFrom}, bytes.NewReader(msg), int64(len(msg)))
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// publish adds keys' DKIM records to the DNS.
func (e *inboundEnv) publish(keys []store.DKIMKey) {
	e.t.Helper()
	for i := range keys {
		r, err := DNSRecord(&keys[i])
		if err != nil {
			e.t.Fatal(err)
		}
		e.dns.Add(e.t, r.ZoneLine())
	}
}

func plainMsg(from string) []byte {
	return []byte("From: " + from + "\r\nTo: bob@example.org\r\nSubject: test\r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n")
}

func TestSPFResults(t *testing.T) {
	t.Parallel()
	var includes []string
	var records []string
	for i := range 11 {
		n := fmt.Sprintf("i%d.example.net", i)
		includes = append(includes, "include:"+n)
		rec := "v=spf1 -all"
		if i == 10 {
			rec = "v=spf1 ip4:192.0.2.10 -all"
		}
		records = append(records, n+`. TXT "`+rec+`"`)
	}
	records = append(records,
		`pass.example.com. TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`fail.example.com. TXT "v=spf1 ip4:198.51.100.1 -all"`,
		`softfail.example.com. TXT "v=spf1 ~all"`,
		`neutral.example.com. TXT "v=spf1 ?all"`,
		`none.example.com. TXT "some other text"`,
		`perm.example.com. TXT "v=spf1 bogus:x -all"`,
		`two.example.com. TXT "v=spf1 -all"`,
		`two.example.com. TXT "v=spf1 +all"`,
		`temp.example.com. TXT "v=spf1 -all"`,
		`mx.pass.example.com. TXT "v=spf1 a -all"`,
		`mx.pass.example.com. A 192.0.2.10`,
		// Ten lookups are allowed (RFC 7208 §4.6.4), the eleventh is not.
		`ten.example.com. TXT "v=spf1 `+strings.Join(includes[:9], " ")+" "+includes[10]+` -all"`,
		`eleven.example.com. TXT "v=spf1 `+strings.Join(includes, " ")+` -all"`,
		// Two void lookups are allowed, the third is not.
		`void2.example.com. TXT "v=spf1 a:nx1.example.com a:nx2.example.com ip4:192.0.2.10 -all"`,
		`void3.example.com. TXT "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com ip4:192.0.2.10 -all"`,
	)
	e := newInboundEnv(t, records...)
	e.dns.Fail("temp.example.com.")
	e.opt.DKIM, e.opt.DMARC = false, false
	for _, tc := range []struct{ from, helo, want string }{
		{"a@pass.example.com", "x", "pass"},
		{"a@fail.example.com", "x", "fail"},
		{"a@softfail.example.com", "x", "softfail"},
		{"a@neutral.example.com", "x", "neutral"},
		{"a@none.example.com", "x", "none"},
		{"a@nxdomain.example.com", "x", "none"},
		{"a@temp.example.com", "x", "temperror"},
		{"a@perm.example.com", "x", "permerror"},
		{"a@two.example.com", "x", "permerror"},
		{"a@ten.example.com", "x", "pass"},
		{"a@eleven.example.com", "x", "permerror"},
		{"a@void2.example.com", "x", "pass"},
		{"a@void3.example.com", "x", "permerror"},
		// The null sender: HELO is checked (RFC 7208 §2.4).
		{"", "mx.pass.example.com", "pass"},
		{"", "fail.example.com", "fail"},
		{"", "[192.0.2.10]", "none"},
	} {
		v := e.check(tc.from, tc.helo, plainMsg("a@example.com"))
		if v.SPF != tc.want {
			t.Errorf("spf of %q/%q: %s, want %s", tc.from, tc.helo, v.SPF, tc.want)
		}
		prop := "smtp.mailfrom=" + tc.from
		if tc.from == "" {
			prop = "smtp.helo="
		}
		if !strings.Contains(v.Header, "spf="+tc.want+" "+prop) {
			t.Errorf("spf of %q: header %q", tc.from, v.Header)
		}
		if v.Action != Accept {
			t.Errorf("spf of %q alone: action %v", tc.from, v.Action)
		}
	}
}

// signWith signs msg with go-msgauth directly (not our signer).
func signWith(t *testing.T, msg []byte, domain, selector string, key crypto.Signer, keys []string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationSimple, HeaderKeys: keys}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func rsaRecord(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return Record{Value: "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)}.Value
}

func TestDKIMResults(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t)
	e.opt.SPF, e.opt.DMARC = false, false
	ours, _ := genKeys(t, "example.com", "pf")
	e.publish(ours)
	msg := plainMsg("alice@example.com")

	// Our signer: both signatures pass.
	signed := sign(t, memKeys{"example.com": ours}, "example.com", string(msg))
	v := e.check("a@example.com", "x", signed)
	if len(v.DKIM) != 2 || v.DKIM[0] != "pass d=example.com" || v.DKIM[1] != "pass d=example.com" {
		t.Fatalf("our signatures: %v", v.DKIM)
	}
	for _, want := range []string{"dkim=pass header.d=example.com header.s=pf-rsa header.a=rsa-sha256 header.b=", "header.s=pf-ed25519 header.a=ed25519-sha256"} {
		if !strings.Contains(v.Header, want) {
			t.Fatalf("no %q in %s", want, v.Header)
		}
	}
	// Altered after signing.
	v = e.check("a@example.com", "x", bytes.Replace(signed, []byte("body"), []byte("b0dy"), 1))
	if len(v.DKIM) != 2 || !strings.HasPrefix(v.DKIM[0], "fail") || !strings.HasPrefix(v.DKIM[1], "fail") {
		t.Fatalf("altered: %v", v.DKIM)
	}
	// None.
	if v = e.check("a@example.com", "x", msg); len(v.DKIM) != 1 || v.DKIM[0] != "none" || !strings.Contains(v.Header, "dkim=none") {
		t.Fatalf("unsigned: %v %s", v.DKIM, v.Header)
	}

	// go-msgauth signing directly with a 1024-bit key: pass; with a
	// 512-bit key (made with the go:debug setting atop this file): fail
	// (RFC 8301 §3.2).
	k1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	e.dns.Add(t, Record{Name: "k1024._domainkey.example.com", Value: rsaRecord(t, k1024)}.ZoneLine())
	if v = e.check("", "x", signWith(t, msg, "example.com", "k1024", k1024, []string{"From", "Subject"})); len(v.DKIM) != 1 || v.DKIM[0] != "pass d=example.com" {
		t.Fatalf("1024-bit key: %v", v.DKIM)
	}
	k512, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	e.dns.Add(t, Record{Name: "k512._domainkey.example.com", Value: rsaRecord(t, k512)}.ZoneLine())
	if v = e.check("", "x", signWith(t, msg, "example.com", "k512", k512, []string{"From"})); len(v.DKIM) != 1 || v.DKIM[0] != "fail d=example.com" || !strings.Contains(v.Header, "too short") {
		t.Fatalf("512-bit key: %v %s", v.DKIM, v.Header)
	}

	// No key published: permerror; the key's DNS fails: temperror.
	if v = e.check("", "x", signWith(t, msg, "example.com", "nokey", k1024, []string{"From"})); v.DKIM[0] != "permerror d=example.com" {
		t.Fatalf("no key: %v", v.DKIM)
	}
	e.dns.Add(t, Record{Name: "broken._domainkey.example.com", Value: rsaRecord(t, k1024)}.ZoneLine())
	e.dns.Fail("broken._domainkey.example.com.")
	if v = e.check("", "x", signWith(t, msg, "example.com", "broken", k1024, []string{"From"})); v.DKIM[0] != "temperror d=example.com" {
		t.Fatalf("key lookup failing: %v", v.DKIM)
	}

	// dkimpy (python3-dkim) signing: rsa-sha256 passes, rsa-sha1 fails
	// (RFC 8301 §3.1), and altered after signing fails.
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k1024)}), 0o600); err != nil {
		t.Fatal(err)
	}
	e.dns.Add(t, Record{Name: "py._domainkey.example.com", Value: rsaRecord(t, k1024)}.ZoneLine())
	pySigned := append([]byte(dkimpy(t, msg, "sign", "example.com", "py", "rsa-sha256", keyFile)), msg...)
	if v = e.check("", "x", pySigned); v.DKIM[0] != "pass d=example.com" {
		t.Fatalf("dkimpy rsa-sha256: %v\n%s", v.DKIM, v.Header)
	}
	if v = e.check("", "x", bytes.Replace(pySigned, []byte("Subject: test"), []byte("Subject: TEST!"), 1)); v.DKIM[0] != "fail d=example.com" {
		t.Fatalf("dkimpy, altered: %v", v.DKIM)
	}
	pySHA1 := append([]byte(dkimpy(t, msg, "sign", "example.com", "py", "rsa-sha1", keyFile)), msg...)
	if v = e.check("", "x", pySHA1); v.DKIM[0] != "fail d=example.com" || !strings.Contains(v.Header, "too weak") {
		t.Fatalf("dkimpy rsa-sha1: %v %s", v.DKIM, v.Header)
	}
}

// dmarcCase is a message from From, sent with MAIL FROM mailFrom, signed
// by signDomain ("" for none), judged under the DNS of the test.
type dmarcCase struct {
	name       string
	from       string
	mailFrom   string
	signDomain string
	want       Action
	wantDMARC  string
}

func TestDMARC(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t,
		// example.com: SPF passes for its own MAIL FROM and that of
		// bounces.example.com.
		`example.com. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`bounces.example.com. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine"`,
		`strict.example.com. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.strict.example.com. TXT "v=DMARC1; p=reject; aspf=s; adkim=s"`,
		`_dmarc.quarantine.example.net. TXT "v=DMARC1; p=quarantine"`,
		`_dmarc.none.example.net. TXT "v=DMARC1; p=none"`,
		`_dmarc.bad.example.net. TXT "v=DMARC1; p=whatever"`,
		`_dmarc.example.org. TXT "v=DMARC1; p=none"`,
	)
	signers := map[string][]store.DKIMKey{}
	for _, d := range []string{"example.com", "news.example.com", "other.example", "example.org"} {
		keys, _ := genKeys(t, d, "s")
		e.publish(keys)
		signers[d] = keys
	}
	for _, tc := range []dmarcCase{
		{"spf aligned relaxed", "a@example.com", "x@bounces.example.com", "", Accept, "pass"},
		{"spf exact", "a@example.com", "x@example.com", "", Accept, "pass"},
		{"dkim aligned relaxed", "a@example.com", "x@elsewhere.example", "news.example.com", Accept, "pass"},
		{"dkim of another domain", "a@example.com", "x@elsewhere.example", "other.example", Reject, "fail"},
		{"nothing", "a@example.com", "x@elsewhere.example", "", Reject, "fail"},
		// Strict alignment: a subdomain does not align.
		{"strict spf of subdomain", "a@strict.example.com", "x@bounces.example.com", "", Reject, "fail"},
		{"strict spf exact", "a@strict.example.com", "x@strict.example.com", "", Accept, "pass"},
		{"strict dkim of parent", "a@strict.example.com", "x@elsewhere.example", "example.com", Reject, "fail"},
		// Subdomain policy: no record at news.example.com, the
		// organizational domain's sp= applies.
		{"subdomain policy", "a@news.example.com", "x@elsewhere.example", "", Junk, "fail"},
		{"subdomain aligned", "a@news.example.com", "x@elsewhere.example", "news.example.com", Accept, "pass"},
		{"quarantine", "a@quarantine.example.net", "x@elsewhere.example", "", Junk, "fail"},
		{"p=none", "a@none.example.net", "x@elsewhere.example", "", Accept, "fail"},
		{"bad record", "a@bad.example.net", "x@elsewhere.example", "", Accept, "permerror"},
		{"no record", "a@norecord.example.net", "x@elsewhere.example", "", Accept, "none"},
		// Our own domains: unauthenticated goes to Junk, whatever the
		// policy says.
		{"own domain p=none", "a@example.org", "x@elsewhere.example", "", Junk, "fail"},
		{"own domain signed", "a@example.org", "x@elsewhere.example", "example.org", Accept, "pass"},
	} {
		msg := plainMsg(tc.from)
		if tc.signDomain != "" {
			msg = sign(t, memKeys{tc.signDomain: signers[tc.signDomain]}, tc.signDomain, string(msg))
		}
		v := e.check(tc.mailFrom, "x", msg)
		if v.Action != tc.want || v.DMARC != tc.wantDMARC {
			t.Errorf("%s: action %v dmarc %s, want %v %s\n%s", tc.name, v.Action, v.DMARC, tc.want, tc.wantDMARC, v.Header)
		}
		if !strings.Contains(v.Header, "dmarc="+tc.wantDMARC) || !strings.Contains(v.Header, "header.from="+strings.Split(tc.from, "@")[1]) {
			t.Errorf("%s: header %s", tc.name, v.Header)
		}
	}

	// dmarc_reject = false: Junk instead.
	e.opt.DMARCReject = false
	if v := e.check("x@elsewhere.example", "x", plainMsg("a@example.com")); v.Action != Junk {
		t.Fatalf("p=reject without dmarc_reject: %v", v.Action)
	}
	// Own domain without a DMARC record.
	e.opt.LocalDomains = append(e.opt.LocalDomains, "norecord.example.net")
	if v := e.check("x@elsewhere.example", "x", plainMsg("a@norecord.example.net")); v.Action != Junk || v.DMARC != "none" {
		t.Fatalf("own domain without record: %v %s", v.Action, v.DMARC)
	}
	// ... unless it passes for another of our domains: that server is
	// ours.
	e.opt.LocalDomains = append(e.opt.LocalDomains, "example.com")
	if v := e.check("x@example.com", "x", plainMsg("a@norecord.example.net")); v.Action != Accept {
		t.Fatalf("own domain, SPF pass for another own domain: %v", v.Action)
	}
	if v := e.check("x@elsewhere.example", "x", sign(t, memKeys{"example.org": signers["example.org"]}, "example.org", string(plainMsg("a@norecord.example.net")))); v.Action != Accept {
		t.Fatalf("own domain, DKIM pass for another own domain: %v", v.Action)
	}
}

func TestDMARCPercent(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t, `_dmarc.example.com. TXT "v=DMARC1; p=reject; pct=30"`, `_dmarc.example.net. TXT "v=DMARC1; p=quarantine; pct=30"`)
	for _, tc := range []struct {
		from string
		roll int
		want Action
	}{
		{"a@example.com", 0, Reject},
		{"a@example.com", 29, Reject},
		{"a@example.com", 30, Junk}, // the next milder policy
		{"a@example.com", 99, Junk},
		{"a@example.net", 29, Junk},
		{"a@example.net", 30, Accept},
	} {
		e.opt.Percent = func() int { return tc.roll }
		if v := e.check("x@elsewhere.example", "x", plainMsg(tc.from)); v.Action != tc.want || v.DMARC != "fail" {
			t.Errorf("%s roll %d: %v %s, want %v", tc.from, tc.roll, v.Action, v.DMARC, tc.want)
		}
	}
}

// A DNS failure is never a pass: when the policy (or what would let the
// message pass it) cannot be looked up, the message waits.
func TestDNSFailureDefers(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t,
		`example.com. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.example.com. TXT "v=DMARC1; p=reject"`,
		`_dmarc.example.net. TXT "v=DMARC1; p=none"`,
		`example.net. TXT "v=spf1 ip4:192.0.2.10 -all"`,
	)
	// The DMARC record fails to load.
	e.dns.Fail("_dmarc.example.com.")
	if v := e.check("x@example.com", "x", plainMsg("a@example.com")); v.Action != Defer || v.DMARC != "temperror" {
		t.Fatalf("dmarc record unavailable: %v %s", v.Action, v.DMARC)
	}
	e.dns.Heal("_dmarc.example.com.")
	// SPF, the only way to pass, fails to load under p=reject.
	e.dns.Fail("example.com.")
	if v := e.check("x@example.com", "x", plainMsg("a@example.com")); v.Action != Defer || v.SPF != "temperror" || v.DMARC != "temperror" {
		t.Fatalf("spf unavailable under p=reject: %v %s %s", v.Action, v.SPF, v.DMARC)
	}
	e.dns.Heal("example.com.")
	if v := e.check("x@example.com", "x", plainMsg("a@example.com")); v.Action != Accept || v.DMARC != "pass" {
		t.Fatalf("healed: %v %s", v.Action, v.DMARC)
	}
	// Under p=none a temporary failure only says so.
	e.dns.Fail("example.net.")
	if v := e.check("x@example.net", "x", plainMsg("a@example.net")); v.Action != Accept || v.DMARC != "temperror" {
		t.Fatalf("spf unavailable under p=none: %v %s", v.Action, v.DMARC)
	}
}

func TestAuthenticationResultsRemoved(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t)
	msg := []byte("Authentication-Results: MX.test.example; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: relay.example.net;\r\n spf=pass smtp.mailfrom=bank.example\r\n" +
		"Authentication-Results: (forged) mx.test.example 1;\r\n\tdmarc=pass\r\n" +
		"Authentication-Results: mx.test.example.evil; dmarc=pass\r\n" +
		"From: a@bank.example\r\nSubject: hi\r\n\r\n" +
		"Authentication-Results: mx.test.example; in the body stays\r\n")
	v := e.check("x@bank.example", "x", msg)
	body, err := io.ReadAll(v.Body(bytes.NewReader(msg), int64(len(msg))))
	if err != nil {
		t.Fatal(err)
	}
	want := "Authentication-Results: relay.example.net;\r\n spf=pass smtp.mailfrom=bank.example\r\n" +
		"Authentication-Results: mx.test.example.evil; dmarc=pass\r\n" +
		"From: a@bank.example\r\nSubject: hi\r\n\r\n" +
		"Authentication-Results: mx.test.example; in the body stays\r\n"
	if string(body) != want {
		t.Fatalf("body:\n%s\nwant:\n%s", body, want)
	}
	if !strings.HasPrefix(v.Header, "Authentication-Results: mx.test.example;\r\n\tspf=none smtp.mailfrom=x@bank.example;\r\n\tdkim=none;\r\n\tdmarc=none header.from=bank.example\r\n") {
		t.Fatalf("header %q", v.Header)
	}

	// Every check off: still our header (none), still the forged ones
	// removed.
	e.opt.SPF, e.opt.DKIM, e.opt.DMARC = false, false, false
	v = e.check("x@bank.example", "x", msg)
	if v.Header != "Authentication-Results: mx.test.example;\r\n\tnone\r\n" || len(v.drop) != 2 {
		t.Fatalf("checks off: %q, %d removed", v.Header, len(v.drop))
	}
}

func TestFromDomain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		froms []string
		want  string
		ok    bool
	}{
		{[]string{"Alice <alice@Example.COM>"}, "example.com", true},
		{[]string{"alice@example.com"}, "example.com", true},
		{[]string{"=?utf-8?q?J=C3=B6rg?= <j@example.com>"}, "example.com", true},
		{[]string{"=?x-unknown?q?abc?= <j@example.com>"}, "example.com", true},
		{[]string{"a@example.com, b@example.com"}, "example.com", true},
		{[]string{"a@example.com, b@example.net"}, "", false},
		{[]string{"a@example.com", "b@example.com"}, "", false},
		{[]string{"undisclosed"}, "", false},
		{[]string{"Jörg <jörg@example.com>"}, "example.com", true},
	} {
		got, ok := fromDomain(tc.froms)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.froms, got, ok, tc.want, tc.ok)
		}
	}
	for d, want := range map[string]string{"a.b.example.co.uk": "example.co.uk", "Example.COM.": "example.com", "com": "com", "x.example": "x.example"} {
		if got := OrganizationalDomain(d); got != want {
			t.Errorf("OrganizationalDomain(%q) = %q, want %q", d, got, want)
		}
	}
}

// Two From fields: no single author domain; the message goes to Junk.
func TestTwoFromFields(t *testing.T) {
	t.Parallel()
	e := newInboundEnv(t, `example.com. TXT "v=spf1 ip4:192.0.2.10 -all"`)
	msg := []byte("From: a@example.com\r\nFrom: ceo@bank.example\r\nSubject: hi\r\n\r\nbody\r\n")
	if v := e.check("x@example.com", "x", msg); v.Action != Junk || v.DMARC != "permerror" {
		t.Fatalf("two From: %v %s", v.Action, v.DMARC)
	}
}
