package msgauth

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/dnsr"
)

// nxResolver answers every question with "no such domain", without a
// network.
type nxResolver struct{}

func nx(name string) error { return &dnsr.Error{Name: name, Type: "TXT", Err: dnsr.ErrNotFound} }

func (nxResolver) MX(_ context.Context, n string) ([]dnsr.MX, dnsr.Result, error) {
	return nil, dnsr.Result{}, nx(n)
}
func (nxResolver) IP(_ context.Context, n string) ([]netip.Addr, dnsr.Result, error) {
	return nil, dnsr.Result{}, nx(n)
}
func (nxResolver) TXT(_ context.Context, n string) ([]string, dnsr.Result, error) {
	return nil, dnsr.Result{}, nx(n)
}
func (nxResolver) TLSA(_ context.Context, n string) ([]dnsr.TLSA, dnsr.Result, error) {
	return nil, dnsr.Result{}, nx(n)
}
func (nxResolver) PTR(_ context.Context, a netip.Addr) ([]string, dnsr.Result, error) {
	return nil, dnsr.Result{}, nx(a.String())
}

// FuzzCheck feeds arbitrary messages to the checks: no panic, no error,
// an Authentication-Results field that is one well-formed header field
// whatever the message says (no line breaks smuggled in from its From:
// or signatures), and a body that differs from the message only by the
// removed fields, none of which is left.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		testMsg,
		"Authentication-Results: mx.test.example; dkim=pass\r\nFrom: a@b.example\r\n\r\nx\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=ex\r\n ample.com; s=s; b=abc; bh=x; h=from\r\nFrom: \"x\r\n y\" <a@b\r\n .example>\r\n\r\n",
		"From: a@b.example\nFrom: c@d.example\n\nbody",
		"no header at all",
		"",
	} {
		f.Add([]byte(s))
	}
	c := NewChecker(CheckOptions{Resolver: nxResolver{}, Hostname: ourHost, LocalDomains: []string{"example.org"},
		SPF: true, DKIM: true, DMARC: true, DMARCReject: true, Percent: func() int { return 0 }})
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, err := c.Check(context.Background(), &Input{RemoteIP: senderIP, Helo: "h.example", MailFrom: "a@b.example"}, bytes.NewReader(msg), int64(len(msg)))
		if err != nil {
			t.Fatal(err)
		}
		h := v.Header
		if !strings.HasPrefix(h, "Authentication-Results: "+ourHost+";") || !strings.HasSuffix(h, "\r\n") {
			t.Fatalf("header %q", h)
		}
		// Every line break is CRLF followed by a tab (a fold).
		inner := strings.ReplaceAll(h[:len(h)-2], "\r\n\t", "")
		if strings.ContainsAny(inner, "\r\n") {
			t.Fatalf("line break in the header %q", h)
		}
		body, err := io.ReadAll(v.Body(bytes.NewReader(msg), int64(len(msg))))
		if err != nil {
			t.Fatal(err)
		}
		removed := 0
		for _, d := range v.drop {
			removed += int(d[1] - d[0])
			if !bytes.HasPrefix(bytes.ToLower(msg[d[0]:d[1]]), []byte("authentication-results")) {
				t.Fatalf("removed %q", msg[d[0]:d[1]])
			}
		}
		if len(body) != len(msg)-removed {
			t.Fatalf("body of %d bytes from %d, %d removed", len(body), len(msg), removed)
		}
		v2, err := c.Check(context.Background(), &Input{RemoteIP: senderIP, Helo: "h.example"}, bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		if len(v2.drop) != 0 {
			t.Fatalf("a field of ours left after removal: %q", body)
		}
	})
}
