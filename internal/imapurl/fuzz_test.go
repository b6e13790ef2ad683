package imapurl

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, refuses with an *Error, and what it
// accepts is consistent: the rump is a prefix of the URL that parses to
// the same URL without its verifier, and an authorized URL is exactly
// its rump, mechanism and token. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038")
	f.Add(";UID=1/;PARTIAL=0.5")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := Parse(raw)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || u != nil {
				t.Fatalf("Parse(%q): %v, %v", raw, u, err)
			}
			return
		}
		if u.Raw != raw || u.UID == 0 || u.Form < Absolute || u.Form > Relative {
			t.Fatalf("Parse(%q) = %+v", raw, u)
		}
		if u.Form != Relative && u.Mailbox == "" {
			t.Fatalf("Parse(%q): no mailbox", raw)
		}
		if u.Access == NoAccess {
			if u.Rump() != "" || u.Token != "" || !u.Expire.IsZero() {
				t.Fatalf("Parse(%q): verifier or expiry without ;URLAUTH=: %+v", raw, u)
			}
			return
		}
		rump := u.Rump()
		if len(rump) > len(raw) || raw[:len(rump)] != rump {
			t.Fatalf("Parse(%q): rump %q", raw, rump)
		}
		if u.Authorized() {
			if raw != rump+":"+u.Mechanism+":"+u.Token || len(u.Token) < minToken {
				t.Fatalf("Parse(%q): rump %q mechanism %q token %q", raw, rump, u.Mechanism, u.Token)
			}
		} else if raw != rump {
			t.Fatalf("Parse(%q): a rump URL whose rump is %q", raw, rump)
		}
		r, err := Parse(rump)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, its rump %q not: %v", raw, rump, err)
		}
		if r.Rump() != rump || r.Authorized() || r.UID != u.UID || r.Mailbox != u.Mailbox || r.User != u.User ||
			r.Section != u.Section || r.Partial != u.Partial || !r.Expire.Equal(u.Expire) || r.Access != u.Access ||
			r.AccessUser != u.AccessUser || r.Host != u.Host || r.UIDValidity != u.UIDValidity {
			t.Fatalf("Parse(%q) = %+v, its rump %+v", raw, u, r)
		}
	})
}
