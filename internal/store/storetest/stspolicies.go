package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// testSTSPolicies checks store.STSPolicies: a policy per domain, matched
// case-insensitively, replaced by the next one put, expired ones removed
// when another is put, and policies that survive a reopen (RFC 8461
// §5.1: a restart must not forget them).
func testSTSPolicies(t *testing.T, h Harness) {
	s := newStore(t, h)
	sp, isSTS := s.(store.STSPolicies)
	if !isSTS {
		t.Fatalf("%T does not implement store.STSPolicies", s)
	}
	now := time.Now().Truncate(time.Millisecond)
	if _, err := sp.STSPolicy(ctx, "example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("policy of a new store: error %v, want ErrNotFound", err)
	}
	org := store.STSPolicy{Domain: "Example.ORG.", ID: "20260101", Mode: "enforce", MX: []string{"mx1.example.org", "*.example.net"},
		Expires: now.Add(24 * time.Hour)}
	old := store.STSPolicy{Domain: "old.test", ID: "1", Mode: "testing", MX: []string{"mx.old.test"}, Expires: now.Add(time.Hour)}
	none := store.STSPolicy{Domain: "none.test", ID: "x", Mode: "none", Expires: now.Add(48 * time.Hour)}
	for _, p := range []store.STSPolicy{org, old, none} {
		ok(t, sp.PutSTSPolicy(ctx, p, now))
	}
	if err := sp.PutSTSPolicy(ctx, store.STSPolicy{Domain: "", Mode: "none"}, now); err == nil {
		t.Fatal("policy without a domain kept")
	}

	check := func(s store.Store) {
		t.Helper()
		sp := s.(store.STSPolicies)
		p := must[*store.STSPolicy](t)(sp.STSPolicy(ctx, "EXAMPLE.org"))
		if p.Domain != "example.org" || p.ID != "20260101" || p.Mode != "enforce" || !slices.Equal(p.MX, org.MX) || !p.Expires.Equal(org.Expires) {
			t.Fatalf("policy of example.org %+v", p)
		}
		p = must[*store.STSPolicy](t)(sp.STSPolicy(ctx, "none.test"))
		if p.Mode != "none" || len(p.MX) != 0 {
			t.Fatalf("policy of none.test %+v", p)
		}
	}
	check(s)

	// A new policy replaces the domain's old one; putting it at a time
	// after old.test's expiry removes that one.
	org.ID, org.Mode, org.MX = "20260202", "testing", []string{"mx2.example.org"}
	ok(t, sp.PutSTSPolicy(ctx, org, now.Add(2*time.Hour)))
	if p := must[*store.STSPolicy](t)(sp.STSPolicy(ctx, "example.org")); p.ID != "20260202" || p.Mode != "testing" || !slices.Equal(p.MX, org.MX) {
		t.Fatalf("replaced policy %+v", p)
	}
	if _, err := sp.STSPolicy(ctx, "old.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired policy of old.test: error %v, want ErrNotFound", err)
	}
	org.ID, org.Mode, org.MX = "20260101", "enforce", []string{"mx1.example.org", "*.example.net"}
	ok(t, sp.PutSTSPolicy(ctx, org, now))

	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	t.Cleanup(func() { s.Close() })
	check(s)
}
