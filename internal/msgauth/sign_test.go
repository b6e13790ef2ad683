package msgauth

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

const testMsg = "From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: a signed\r\n  message, folded\r\n" +
	"Date: Mon, 07 Dec 2026 18:00:00 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Mailer: test\r\n" +
	"\r\n" +
	"Hello Bob,\r\n\r\nthis is   signed.  \r\n\r\n\r\n"

// sign signs msg with keys and returns the signed message.
func sign(t *testing.T, keys memKeys, domain string, msg string) []byte {
	t.Helper()
	sig, err := NewSigner(keys, nil).Sign(context.Background(), domain, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return append(sig, msg...)
}

// goVerify verifies with go-msgauth against recs and returns "pass d="
// or "fail d=" per signature (go-msgauth does not report the selector).
func goVerify(t *testing.T, msg []byte, recs map[string]string) []string {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if v, ok := recs[strings.TrimSuffix(name, ".")]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record %s", name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		res := "pass"
		if v.Err != nil {
			res = "fail"
			t.Logf("go-msgauth: %s: %v", v.Domain, v.Err)
		}
		out = append(out, res+" d="+v.Domain)
	}
	return out
}

func TestSignVerifiedByBoth(t *testing.T) {
	t.Parallel()
	keys, recs := genKeys(t, "example.org", DefaultSelector)
	signed := sign(t, memKeys{"example.org": keys}, "Example.ORG", testMsg)
	hdr := string(signed[:len(signed)-len(testMsg)])
	if strings.Count(hdr, "DKIM-Signature:") != 2 || !strings.Contains(hdr, "a=rsa-sha256") || !strings.Contains(hdr, "a=ed25519-sha256") {
		t.Fatalf("signatures:\n%s", hdr)
	}
	for _, want := range []string{"c=relaxed/relaxed", "s=postfach-rsa", "s=postfach-ed25519", "d=example.org"} {
		if !strings.Contains(hdr, want) {
			t.Fatalf("no %s in\n%s", want, hdr)
		}
	}
	// RFC 6376 §5.4.2: From oversigned; X-Mailer (not in the list) not
	// signed.
	h := strings.ToLower(strings.Join(strings.Fields(hdr), ""))
	if strings.Count(h, "h=from:from:subject:date:to:message-id:mime-version:content-type;") != 2 {
		t.Fatalf("h= does not oversign From, or lists unexpected fields:\n%s", hdr)
	}
	if strings.Contains(h, "x-mailer") {
		t.Fatalf("X-Mailer signed:\n%s", hdr)
	}
	wantBoth := []string{"pass d=example.org s=postfach-rsa", "pass d=example.org s=postfach-ed25519"}
	if got := goVerify(t, signed, recs); !equalSet(got, []string{"pass d=example.org", "pass d=example.org"}) {
		t.Fatalf("go-msgauth: %q", got)
	}
	if got := dkimpyVerify(t, signed, recs); !equalSet(got, wantBoth) {
		t.Fatalf("dkimpy: %q, want %q", got, wantBoth)
	}

	// Relaxed canonicalization: refolded header and changed whitespace
	// still verify (RFC 6376 §3.4.2, §3.4.4).
	relaxed := bytes.Replace(signed, []byte("Subject: a signed\r\n  message, folded"), []byte("Subject:   a signed message,\r\n\tfolded"), 1)
	relaxed = bytes.Replace(relaxed, []byte("this is   signed.  "), []byte("this is signed."), 1)
	if got := dkimpyVerify(t, relaxed, recs); !equalSet(got, wantBoth) {
		t.Fatalf("dkimpy after refolding: %q", got)
	}

	// Altered after signing: every signature fails, for both verifiers.
	for name, altered := range map[string][]byte{
		"body":          bytes.Replace(signed, []byte("Hello Bob"), []byte("Hello Eve"), 1),
		"subject":       bytes.Replace(signed, []byte("a signed"), []byte("a forged"), 1),
		"second From":   bytes.Replace(signed, []byte("To: bob"), []byte("From: eve@example.com\r\nTo: bob"), 1),
		"appended body": append(bytes.Clone(signed), "P.S. pay me\r\n"...),
	} {
		for _, r := range goVerify(t, altered, recs) {
			if strings.HasPrefix(r, "pass") {
				t.Errorf("%s: go-msgauth %s", name, r)
			}
		}
		for _, r := range dkimpyVerify(t, altered, recs) {
			if strings.HasPrefix(r, "pass") {
				t.Errorf("%s: dkimpy %s", name, r)
			}
		}
	}
}

func equalSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for n := range maps.Values(m) {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestSignNoKeys(t *testing.T) {
	t.Parallel()
	keys, _ := genKeys(t, "example.org", "s1")
	for _, d := range []string{"example.net", "", "sub.example.org"} {
		sig, err := NewSigner(memKeys{"example.org": keys}, nil).Sign(context.Background(), d, strings.NewReader(testMsg))
		if err != nil || sig != nil {
			t.Fatalf("domain %q: signature %q, err %v", d, sig, err)
		}
	}
}

// A damaged key does not stop the mail: the other key signs.
func TestSignDamagedKey(t *testing.T) {
	t.Parallel()
	keys, recs := genKeys(t, "example.org", "s1")
	keys[0].PrivateKey = []byte("not a key")
	signed := sign(t, memKeys{"example.org": keys}, "example.org", testMsg)
	if got := dkimpyVerify(t, signed, recs); !equalSet(got, []string{"pass d=example.org s=s1-ed25519"}) {
		t.Fatalf("dkimpy: %q", got)
	}
}

func TestSignLongHeaderLine(t *testing.T) {
	t.Parallel()
	keys, recs := genKeys(t, "example.org", "s1")
	// A header line longer than bufio's buffer, and one ending exactly
	// at its edge, must not be taken for the end of the header.
	long := "X-Long: " + strings.Repeat("x", 4096-len("X-Long: ")) + "\r\n"
	msg := long + "X-Long2: " + strings.Repeat("y", 9000) + "\r\n" + testMsg
	signed := sign(t, memKeys{"example.org": keys}, "example.org", msg)
	if !bytes.Contains(signed, []byte("from:to:subject")) && !bytes.Contains(bytes.ToLower(signed), []byte("h=from:")) {
		t.Fatalf("From not found behind long header lines:\n%.300s", signed)
	}
	if got := dkimpyVerify(t, signed, recs); !equalSet(got, []string{"pass d=example.org s=s1-rsa", "pass d=example.org s=s1-ed25519"}) {
		t.Fatalf("dkimpy: %q", got)
	}
}

// TestSignAfterNewKeys: the signer keeps parsed keys between messages;
// keys deleted and made again under the same selector sign from the next
// message on, never the old ones.
func TestSignAfterNewKeys(t *testing.T) {
	t.Parallel()
	oldKeys, oldRecs := genKeys(t, "example.org", DefaultSelector)
	keys := memKeys{"example.org": oldKeys}
	s := NewSigner(keys, nil)
	sig, err := s.Sign(context.Background(), "example.org", strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	if got := goVerify(t, append(sig, testMsg...), oldRecs); strings.Join(got, ",") != "pass d=example.org,pass d=example.org" {
		t.Fatalf("with the first keys: %v", got)
	}
	newKeys, newRecs := genKeys(t, "example.org", DefaultSelector)
	keys["example.org"] = newKeys
	sig, err = s.Sign(context.Background(), "example.org", strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	if got := goVerify(t, append(sig, testMsg...), newRecs); strings.Join(got, ",") != "pass d=example.org,pass d=example.org" {
		t.Fatalf("with the new keys: %v (signed with the old ones?)", got)
	}
}
