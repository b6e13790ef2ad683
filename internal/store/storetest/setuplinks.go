package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// testSetupLinks checks store.SetupLinks: one link per device, used once
// (also under concurrent use), expiry wipes the sealed password, and
// revocation, a newer link and account deletion remove it.
func testSetupLinks(t *testing.T, h Harness) {
	s := newStore(t, h)
	sl, isLinks := s.(store.SetupLinks)
	cs, isCreds := s.(store.Credentials)
	if !isLinks || !isCreds {
		t.Fatalf("%T does not implement store.SetupLinks and store.Credentials", s)
	}
	a, _ := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	must[*store.Device](t)(cs.AddDevice(ctx, a.ID, "phone", "h1", "s1"))
	must[*store.Device](t)(cs.AddDevice(ctx, b.ID, "phone", "hb", "sb"))
	now := time.Unix(1800000000, 0)
	link := func(id string, acct store.AccountID, dev string) store.SetupLink {
		return store.SetupLink{ID: []byte(id), Account: acct, Device: dev, Sealed: []byte("sealed-" + id),
			Created: now, Expires: now.Add(24 * time.Hour)}
	}

	// Only a device with a password gets a link.
	_, err := sl.AddSetupLink(ctx, link("x", a.ID, "tablet"), "", "")
	wantErr(t, err, store.ErrNotFound)
	_, err = sl.AddSetupLink(ctx, link("x", 999999, "phone"), "", "")
	wantErr(t, err, store.ErrNotFound)
	_, err = sl.SetupLink(ctx, []byte("x"))
	wantErr(t, err, store.ErrNotFound)

	d := must[*store.Device](t)(sl.AddSetupLink(ctx, link("l1", a.ID, "phone"), "", ""))
	if d.PasswordHash != "h1" {
		t.Fatalf("a link without a new password changed it: %+v", d)
	}
	l := must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("l1")))
	if l.Account != a.ID || l.Device != "phone" || string(l.Sealed) != "sealed-l1" || !l.Created.Equal(now) ||
		!l.Expires.Equal(now.Add(24*time.Hour)) || !l.Used.IsZero() {
		t.Fatalf("stored link %+v", l)
	}

	// A new link (with a new password) replaces the old one.
	d = must[*store.Device](t)(sl.AddSetupLink(ctx, link("l2", a.ID, "phone"), "h2", "s2"))
	if d.PasswordHash != "h2" || d.SCRAM != "s2" {
		t.Fatalf("device after a new password: %+v", d)
	}
	devs := must[[]store.Device](t)(cs.Devices(ctx, a.ID))
	if len(devs) != 1 || devs[0].PasswordHash != "h2" {
		t.Fatalf("devices %+v", devs)
	}
	_, err = sl.SetupLink(ctx, []byte("l1"))
	wantErr(t, err, store.ErrNotFound)
	if devs := must[[]store.Device](t)(cs.Devices(ctx, b.ID)); devs[0].PasswordHash != "hb" {
		t.Fatalf("another account's device changed: %+v", devs)
	}

	// Used once, even by many at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := sl.UseSetupLink(ctx, []byte("l2"), now.Add(time.Hour))
			if err != nil {
				t.Error(err)
				return
			}
			if l.Sealed != nil {
				mu.Lock()
				got++
				mu.Unlock()
				if !bytes.Equal(l.Sealed, []byte("sealed-l2")) {
					t.Errorf("sealed %q", l.Sealed)
				}
			}
		}()
	}
	wg.Wait()
	if got != 1 {
		t.Fatalf("%d uses of one link got its password", got)
	}
	l = must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("l2")))
	if l.Sealed != nil || !l.Used.Equal(now.Add(time.Hour)) {
		t.Fatalf("used link %+v", l)
	}
	_, err = sl.UseSetupLink(ctx, []byte("nope"), now)
	wantErr(t, err, store.ErrNotFound)

	// Expiry: not usable at Expires, and its sealed password is wiped.
	must[*store.Device](t)(sl.AddSetupLink(ctx, link("b1", b.ID, "phone"), "", ""))
	l = must[*store.SetupLink](t)(sl.UseSetupLink(ctx, []byte("b1"), now.Add(24*time.Hour)))
	if l.Sealed != nil || !l.Used.IsZero() {
		t.Fatalf("expired link used: %+v", l)
	}
	if l = must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("b1"))); l.Sealed != nil {
		t.Fatalf("expired link keeps its password: %+v", l)
	}
	must[*store.Device](t)(sl.AddSetupLink(ctx, link("b2", b.ID, "phone"), "", ""))
	ok(t, sl.ExpireSetupLinks(ctx, now.Add(time.Hour)))
	if l = must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("b2"))); l.Sealed == nil {
		t.Fatal("a link that has not expired was wiped")
	}
	ok(t, sl.ExpireSetupLinks(ctx, now.Add(25*time.Hour)))
	if l = must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("b2"))); l.Sealed != nil {
		t.Fatal("ExpireSetupLinks left the sealed password of an expired link")
	}
	if l = must[*store.SetupLink](t)(sl.SetupLink(ctx, []byte("l2"))); l.Used.IsZero() {
		t.Fatal("a used link was forgotten early")
	}
	ok(t, sl.ExpireSetupLinks(ctx, now.Add(24*time.Hour+store.SetupLinkKeep)))
	for _, id := range []string{"l2", "b2"} {
		_, err = sl.SetupLink(ctx, []byte(id))
		wantErr(t, err, store.ErrNotFound)
	}

	// Revoking the device removes its link; so does deleting the account.
	must[*store.Device](t)(sl.AddSetupLink(ctx, link("l3", a.ID, "phone"), "", ""))
	ok(t, cs.RevokeDevice(ctx, a.ID, "phone"))
	_, err = sl.SetupLink(ctx, []byte("l3"))
	wantErr(t, err, store.ErrNotFound)
	_, err = sl.AddSetupLink(ctx, link("l4", a.ID, "phone"), "", "")
	wantErr(t, err, store.ErrNotFound) // revoked: no password
	must[*store.Device](t)(sl.AddSetupLink(ctx, link("b3", b.ID, "phone"), "", ""))
	ok(t, s.DeleteAccount(ctx, b.ID))
	_, err = sl.SetupLink(ctx, []byte("b3"))
	wantErr(t, err, store.ErrNotFound)
}
