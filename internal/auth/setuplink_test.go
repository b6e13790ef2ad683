package auth

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// TestSetupLink: a token opens its link's sealed password and nothing
// else does; the store record holds neither the token nor the password.
func TestSetupLink(t *testing.T) {
	now := time.Unix(1800000000, 500)
	const pw = "abcdefghjkmnpqrstuvwxyz23456"
	tok, l, err := NewSetupLink(7, "phone", pw, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := ParseSetupToken(tok)
	if !ok || len(raw)*8 < 128 || len(tok) != SetupTokenLen {
		t.Fatalf("token %q: %v", tok, ok)
	}
	if !bytes.Equal(l.ID, SetupLinkID(raw)) || l.Account != 7 || l.Device != "phone" ||
		!l.Created.Equal(time.Unix(1800000000, 0)) || l.Expires.Sub(l.Created) != 24*time.Hour {
		t.Fatalf("link %+v", l)
	}
	for _, secret := range [][]byte{raw, []byte(tok), []byte(pw)} {
		if bytes.Contains(l.ID, secret) || bytes.Contains(l.Sealed, secret) {
			t.Fatalf("the store record holds %q", secret)
		}
	}
	got, err := OpenSetupPassword(raw, 7, "phone", l.Sealed)
	if err != nil || got != pw {
		t.Fatalf("open: %q %v", got, err)
	}
	other := bytes.Clone(raw)
	other[0] ^= 1
	for _, c := range []struct {
		name   string
		token  []byte
		acct   int64
		device string
		sealed []byte
	}{
		{"other token", other, 7, "phone", l.Sealed},
		{"other account", raw, 8, "phone", l.Sealed},
		{"other device", raw, 7, "laptop", l.Sealed},
		{"truncated", raw, 7, "phone", l.Sealed[:10]},
		{"flipped", raw, 7, "phone", append(bytes.Clone(l.Sealed[:len(l.Sealed)-1]), l.Sealed[len(l.Sealed)-1]^1)},
		{"empty", raw, 7, "phone", nil},
	} {
		if _, err := OpenSetupPassword(c.token, storeID(c.acct), c.device, c.sealed); !errors.Is(err, ErrSetupSeal) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	tok2, l2, _ := NewSetupLink(7, "phone", pw, now)
	if tok2 == tok || bytes.Equal(l2.Sealed, l.Sealed) {
		t.Fatal("two links are alike")
	}
	for _, bad := range []string{"", tok[:len(tok)-1], tok + "A", tok[:len(tok)-1] + "!", "../../../../../etc/passwd/.."} {
		if _, ok := ParseSetupToken(bad); ok {
			t.Errorf("ParseSetupToken(%q) accepted", bad)
		}
	}
}

func storeID(n int64) store.AccountID { return store.AccountID(n) }

// FuzzParseSetupToken: a token from the URL is accepted only in its
// canonical form, and then has SetupTokenBytes bytes.
func FuzzParseSetupToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		raw, ok := ParseSetupToken(s)
		if !ok {
			return
		}
		if len(raw) != SetupTokenBytes || setupB64.EncodeToString(raw) != s {
			t.Fatalf("ParseSetupToken(%q) = %x", s, raw)
		}
	})
}
