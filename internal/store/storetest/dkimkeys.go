package storetest

import (
	"bytes"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// testDKIMKeys checks store.DKIMKeys: keys kept per domain and selector,
// domains matched case-insensitively, a selector never replaced, deletion,
// and keys that survive a reopen.
func testDKIMKeys(t *testing.T, h Harness) {
	s := newStore(t, h)
	dk, isDKIM := s.(store.DKIMKeys)
	if !isDKIM {
		t.Fatalf("%T does not implement store.DKIMKeys", s)
	}
	if ks := must[[]store.DKIMKey](t)(dk.DKIMKeys(ctx, "")); len(ks) != 0 {
		t.Fatalf("new store has dkim keys %+v", ks)
	}
	rsaKey := store.DKIMKey{Domain: "Example.ORG", Selector: "postfach-rsa", Algorithm: "rsa", PrivateKey: []byte("rsa secret")}
	edKey := store.DKIMKey{Domain: "example.org", Selector: "postfach-ed25519", Algorithm: "ed25519", PrivateKey: []byte("ed secret")}
	other := store.DKIMKey{Domain: "example.net", Selector: "s1", Algorithm: "ed25519", PrivateKey: []byte("net secret")}
	for _, k := range []store.DKIMKey{rsaKey, edKey, other} {
		ok(t, dk.AddDKIMKey(ctx, k))
	}
	// A selector is never replaced.
	dup := edKey
	dup.PrivateKey = []byte("another")
	wantErr(t, dk.AddDKIMKey(ctx, dup), store.ErrExists)
	// Nonsense is refused.
	for _, bad := range []store.DKIMKey{
		{Domain: "", Selector: "s", Algorithm: "rsa", PrivateKey: []byte("x")},
		{Domain: "example.org", Selector: "a b", Algorithm: "rsa", PrivateKey: []byte("x")},
		{Domain: "example.org", Selector: "s", Algorithm: "dsa", PrivateKey: []byte("x")},
		{Domain: "example.org", Selector: "s", Algorithm: "rsa"},
	} {
		if err := dk.AddDKIMKey(ctx, bad); err == nil {
			t.Fatalf("key %+v added", bad)
		}
	}

	check := func(s store.Store) {
		t.Helper()
		dk := s.(store.DKIMKeys)
		ks := must[[]store.DKIMKey](t)(dk.DKIMKeys(ctx, "EXAMPLE.org"))
		if len(ks) != 2 || ks[0].Selector != "postfach-ed25519" || ks[1].Selector != "postfach-rsa" {
			t.Fatalf("keys of example.org %+v", ks)
		}
		if ks[1].Domain != "example.org" || ks[1].Algorithm != "rsa" || !bytes.Equal(ks[1].PrivateKey, []byte("rsa secret")) || ks[1].Created.IsZero() {
			t.Fatalf("rsa key %+v", ks[1])
		}
		if !bytes.Equal(ks[0].PrivateKey, []byte("ed secret")) || ks[0].Algorithm != "ed25519" {
			t.Fatalf("ed25519 key %+v", ks[0])
		}
		all := must[[]store.DKIMKey](t)(dk.DKIMKeys(ctx, ""))
		if len(all) != 3 || all[0].Domain != "example.net" {
			t.Fatalf("all keys %+v", all)
		}
		if ks := must[[]store.DKIMKey](t)(dk.DKIMKeys(ctx, "example.com")); len(ks) != 0 {
			t.Fatalf("keys of a domain without keys %+v", ks)
		}
	}
	check(s)

	wantErr(t, dk.DeleteDKIMKey(ctx, "example.org", "nosuch"), store.ErrNotFound)
	ok(t, dk.DeleteDKIMKey(ctx, "EXAMPLE.NET", "s1"))
	wantErr(t, dk.DeleteDKIMKey(ctx, "example.net", "s1"), store.ErrNotFound)
	ok(t, dk.AddDKIMKey(ctx, other))

	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	check(s)
}
