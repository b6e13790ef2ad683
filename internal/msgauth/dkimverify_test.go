package msgauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/dnstest"
)

// mapResolver answers TXT questions from a map, and every other one with
// "no such domain".
type mapResolver struct {
	nxResolver
	txt map[string][]string
}

func (m mapResolver) TXT(_ context.Context, n string) ([]string, dnsr.Result, error) {
	if v, ok := m.txt[strings.TrimSuffix(n, ".")]; ok {
		return v, dnsr.Result{}, nil
	}
	return nil, dnsr.Result{}, nx(n)
}

// dkimFuzzKeys are the keys of the differential test: a fixed ed25519 key
// (so that the seed files hold valid signatures), an RSA key made once,
// and the records that publish them, among others.
var dkimFuzzKeys = sync.OnceValue(func() (k struct {
	ed  ed25519.PrivateKey
	rsa *rsa.PrivateKey
	txt map[string][]string
}) {
	k.ed = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		panic(err)
	}
	rsaP := base64.StdEncoding.EncodeToString(der)
	edP := base64.StdEncoding.EncodeToString(k.ed.Public().(ed25519.PublicKey))
	k.txt = map[string][]string{
		"ed._domainkey.example.com":       {"v=DKIM1; k=ed25519; p=" + edP},
		"rsa._domainkey.example.com":      {"v=DKIM1; k=rsa; p=" + rsaP},
		"pkcs1._domainkey.example.com":    {"p=" + base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))},
		"sha1only._domainkey.example.com": {"v=DKIM1; h=sha1; p=" + rsaP},
		"web._domainkey.example.com":      {"v=DKIM1; k=ed25519; s=web; p=" + edP},
		"revoked._domainkey.example.com":  {"v=DKIM1; p="},
		"two._domainkey.example.com":      {"v=DKIM1; k=ed25519; p=" + edP, "v=DKIM1; k=ed25519; p=" + edP},
		"bad._domainkey.example.com":      {"v=DKIM1; k=ed25519; p=!!"},
		"v2._domainkey.example.com":       {"v=DKIM2; k=ed25519; p=" + edP},
	}
	return k
})

// goMsgauthDKIM is what the checks said with go-msgauth's verifier, the
// behaviour verifyDKIMSig keeps.
func goMsgauthDKIM(msg []byte, n int, txt map[string][]string) []dkimResult {
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			v, _, err := mapResolver{txt: txt}.TXT(context.Background(), name)
			return v, netErr(err, name)
		},
		MaxVerifications: maxSignatures,
	})
	out := make([]dkimResult, min(n, maxSignatures))
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		for i := range out {
			out[i] = dkimResult{"temperror", "verification failed"}
		}
		return out
	}
	for i := range out {
		if i >= len(vs) {
			out[i] = dkimResult{"permerror", "not verified"}
			continue
		}
		e := vs[i].Err
		switch {
		case e == nil:
			out[i] = dkimResult{"pass", ""}
		case dkim.IsTempFail(e):
			out[i] = dkimResult{"temperror", "key unavailable"}
		case strings.Contains(e.Error(), "too weak"), strings.Contains(e.Error(), "too short"):
			out[i] = dkimResult{"fail", trimDKIMErr(e)}
		case dkim.IsPermFail(e):
			out[i] = dkimResult{"permerror", trimDKIMErr(e)}
		default:
			out[i] = dkimResult{"fail", trimDKIMErr(e)}
		}
	}
	return out
}

// netErr is dnsr.NetResolver's error for err.
func netErr(err error, name string) error {
	if err == nil {
		return nil
	}
	_, lerr := dnsr.NetResolver{R: nxResolver{}}.LookupTXT(context.Background(), name)
	return lerr
}

// ourDKIM is the checks' DKIM results of msg.
func ourDKIM(t testing.TB, c *Checker, msg []byte) ([]dkimResult, int) {
	header, err := readHeaderBytes(bufio.NewReader(bytes.NewReader(msg)), maxCheckHeader)
	if err != nil {
		t.Fatal(err)
	}
	n := len(dkimSignatures(splitFields(header)))
	if n == 0 {
		return nil, 0
	}
	return c.checkDKIM(context.Background(), bytes.NewReader(msg), int64(len(msg)), header, n), n
}

// dkimSign signs msg with go-msgauth (RSA when rsaKey, else ed25519).
func dkimSign(t testing.TB, msg, selector string, key crypto.Signer, hc, bc dkim.Canonicalization, keys ...string) string {
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.com", Selector: selector, Signer: key,
		HeaderCanonicalization: hc, BodyCanonicalization: bc, HeaderKeys: keys}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// dkimSeeds are signed messages of many shapes for the differential
// test.
func dkimSeeds(t testing.TB) []string {
	k := dkimFuzzKeys()
	bodies := []string{
		"body\r\n",
		"",
		"\r\n\r\n",
		"a  b \t c\r\n  \r\nd\t\r\n\r\n\r\n",
		"bare\nlf\n\nlines\n\n",
		"lone\rcr\r\n\r",
		strings.Repeat("x", 70000) + "\r\n \r\n",
		"no final line break",
	}
	var out []string
	for _, b := range bodies {
		msg := "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject:  a   folded\r\n\tsubject \r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\n\r\n" + b
		for _, c := range [][2]dkim.Canonicalization{{"simple", "simple"}, {"relaxed", "relaxed"}, {"relaxed", "simple"}, {"simple", "relaxed"}} {
			out = append(out, dkimSign(t, msg, "ed", k.ed, c[0], c[1]))
		}
		// Two signatures, RSA over ed25519 (the RSA one signs the other).
		ed := dkimSign(t, msg, "ed", k.ed, "relaxed", "relaxed")
		out = append(out, dkimSign(t, ed, "rsa", k.rsa, "relaxed", "simple", "From", "Subject", "DKIM-Signature"))
	}
	msg := "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"
	for _, sel := range []string{"pkcs1", "sha1only", "web", "revoked", "two", "bad", "v2", "missing"} {
		key := crypto.Signer(k.ed)
		if sel == "pkcs1" || sel == "sha1only" {
			key = k.rsa
		}
		out = append(out, dkimSign(t, msg, sel, key, "relaxed", "relaxed"))
	}
	signed := dkimSign(t, msg, "ed", k.ed, "relaxed", "relaxed")
	out = append(out,
		strings.Replace(signed, "body", "b0dy", 1),
		strings.Replace(signed, "Subject: s", "Subject: S", 1),
		strings.Replace(signed, "v=1;", "v=1; l=3;", 1),
		strings.Replace(signed, "v=1;", "v=1; x=1000;", 1),
		strings.Replace(signed, "v=1;", "v=1; i=x@other.example;", 1),
		strings.Replace(signed, "a=ed25519-sha256", "a=rsa-sha256", 1),
		strings.Replace(signed, "v=1;", "v=2;", 1),
		strings.Replace(signed, "c=relaxed/relaxed", "c=odd/relaxed", 1),
		strings.Replace(signed, "\r\n\r\n", "\r\n", 1),
		strings.Replace(signed, "\r\n", "\n", -1),
		strings.Repeat(signed[:strings.Index(signed, "From:")], 7)+msg,
		"DKIM-Signature: v=1; d=example.com\r\n\r\n",
		"DKIM-Signature: no tags\r\nFrom: a@example.com\r\n\r\n",
		" DKIM-Signature: v=1\r\nFrom: a\r\n\r\n",
		"DKIM-Signature: v=1; a=ed25519-sha256",
	)
	return out
}

// TestDKIMVerifyMatchesGoMsgauth: the checks' own verifier gives, for
// every seed, the results go-msgauth's gave.
func TestDKIMVerifyMatchesGoMsgauth(t *testing.T) {
	t.Parallel()
	k := dkimFuzzKeys()
	c := NewChecker(CheckOptions{Resolver: mapResolver{txt: k.txt}, Hostname: ourHost, DKIM: true})
	passes := 0
	for i, s := range dkimSeeds(t) {
		got, n := ourDKIM(t, c, []byte(s))
		want := goMsgauthDKIM([]byte(s), n, k.txt)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("seed %d: got %v, go-msgauth %v\n%.600q", i, got, want, s)
		}
		for _, r := range got {
			if r.result == "pass" {
				passes++
			}
		}
	}
	if passes < 30 {
		t.Fatalf("only %d signatures passed: the seeds do not test much", passes)
	}
}

// FuzzDKIMVerify holds the checks' verifier to go-msgauth's results on
// any message.
func FuzzDKIMVerify(f *testing.F) {
	for _, s := range dkimSeeds(f) {
		f.Add([]byte(s))
	}
	k := dkimFuzzKeys()
	c := NewChecker(CheckOptions{Resolver: mapResolver{txt: k.txt}, Hostname: ourHost, DKIM: true})
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, n := ourDKIM(t, c, msg)
		if want := goMsgauthDKIM(msg, n, k.txt); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, go-msgauth %v", got, want)
		}
	})
}

// TestDKIMKeyCache: a key record is parsed once while it stays the same;
// a changed record is used once the resolver's cached answer has expired
// (its TTL), and a removed one fails then.
func TestDKIMKeyCache(t *testing.T) {
	t.Parallel()
	keyA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	keyB := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	rec := func(k ed25519.PrivateKey) string {
		return `sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)) + `"`
	}
	d := dnstest.New(t, rec(keyA))
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	res, err := dnsr.New(dnsr.Options{Servers: []string{d.Addr}, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	advance := func(dt time.Duration) { mu.Lock(); now = now.Add(dt); mu.Unlock() }
	c := NewChecker(CheckOptions{Resolver: res, Hostname: ourHost, DKIM: true})
	msg := "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"
	byA := []byte(dkimSign(t, msg, "sel", keyA, "relaxed", "relaxed"))
	byB := []byte(dkimSign(t, msg, "sel", keyB, "relaxed", "relaxed"))
	check := func(m []byte, want string) {
		t.Helper()
		v, err := c.Check(context.Background(), &Input{RemoteIP: netip.MustParseAddr("192.0.2.1"), Helo: "h.example"}, bytes.NewReader(m), int64(len(m)))
		if err != nil {
			t.Fatal(err)
		}
		if len(v.DKIM) != 1 || !strings.HasPrefix(v.DKIM[0], want) {
			t.Fatalf("got %v, want %s", v.DKIM, want)
		}
	}
	check(byA, "pass")
	check(byA, "pass")
	check(byB, "fail")
	if p := c.keys.parsed(); p != 1 {
		t.Fatalf("the record was parsed %d times, want once", p)
	}
	// The record changes; within the TTL the cached answer, and key A,
	// stand.
	d.Remove("sel._domainkey.example.com")
	d.Add(t, rec(keyB))
	advance(200 * time.Second)
	check(byA, "pass")
	// After the TTL: key B.
	advance(200 * time.Second)
	check(byB, "pass")
	check(byA, "fail")
	if p := c.keys.parsed(); p != 2 {
		t.Fatalf("%d parses, want 2", p)
	}
	// The record goes away: after the TTL, no key.
	d.Remove("sel._domainkey.example.com")
	advance(400 * time.Second)
	check(byB, "permerror")
}
