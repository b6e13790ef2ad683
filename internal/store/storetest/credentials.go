package storetest

import (
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// testCredentials checks store.Credentials: devices with passwords, their
// revocation and its event, sign-in records, and SCRAM keys bound to the
// account password.
func testCredentials(t *testing.T, h Harness) {
	s := newStore(t, h)
	cs, isCreds := s.(store.Credentials)
	if !isCreds {
		t.Fatalf("%T does not implement store.Credentials", s)
	}
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")

	// SCRAM keys of the account password: bound to its hash.
	if v := must[string](t)(cs.AccountSCRAM(ctx, a.ID)); v != "" {
		t.Fatalf("new account has scram keys %q", v)
	}
	if set := must[bool](t)(cs.SetAccountSCRAM(ctx, a.ID, "not the hash", "keys")); set {
		t.Fatal("scram keys stored for a hash that is not the account's")
	}
	if set := must[bool](t)(cs.SetAccountSCRAM(ctx, a.ID, a.PasswordHash, "keys-1")); !set {
		t.Fatal("scram keys not stored")
	}
	if v := must[string](t)(cs.AccountSCRAM(ctx, a.ID)); v != "keys-1" {
		t.Fatalf("scram keys %q", v)
	}
	if v := must[string](t)(cs.AccountSCRAM(ctx, b.ID)); v != "" {
		t.Fatalf("scram keys leaked to another account: %q", v)
	}
	ok(t, s.SetPassword(ctx, a.ID, "new-hash"))
	if v := must[string](t)(cs.AccountSCRAM(ctx, a.ID)); v != "" {
		t.Fatalf("scram keys of the old password survive a new password: %q", v)
	}
	_, err := cs.AccountSCRAM(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)

	// Devices.
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	subB := s.Subscribe(b.ID)
	defer subB.Close()
	d := must[*store.Device](t)(cs.AddDevice(ctx, a.ID, "phone", "h1", "s1"))
	if d.Name != "phone" || d.PasswordHash != "h1" || d.SCRAM != "s1" || d.Created.IsZero() || !d.Revoked.IsZero() {
		t.Fatalf("added device %+v", d)
	}
	_, err = cs.AddDevice(ctx, a.ID, "phone", "h2", "s2")
	wantErr(t, err, store.ErrExists)
	must[*store.Device](t)(cs.AddDevice(ctx, b.ID, "phone", "hb", "sb"))
	at := time.Unix(1700000000, 0)
	ok(t, cs.RecordDeviceLogin(ctx, a.ID, "phone", store.DeviceLogin{At: at, Remote: "203.0.113.7", Proto: "imap"}))
	ok(t, cs.SetDeviceClient(ctx, a.ID, "phone", "K-9 Mail 6.8"))
	ok(t, cs.SetDeviceClient(ctx, a.ID, "nosuch", "x"))
	// A first login as ADDRESS#NAME makes a device without a password.
	ok(t, cs.RecordDeviceLogin(ctx, a.ID, "laptop", store.DeviceLogin{At: at, Remote: "::1", Proto: "pop3"}))
	devs := must[[]store.Device](t)(cs.Devices(ctx, a.ID))
	if len(devs) != 2 || devs[0].Name != "laptop" || devs[1].Name != "phone" {
		t.Fatalf("devices %+v", devs)
	}
	if l := devs[0]; l.PasswordHash != "" || l.LastProto != "pop3" || l.LastRemote != "::1" || !l.LastLogin.Equal(at) {
		t.Fatalf("laptop %+v", l)
	}
	if p := devs[1]; p.PasswordHash != "h1" || p.LastClient != "K-9 Mail 6.8" || p.LastProto != "imap" || p.LastRemote != "203.0.113.7" || !p.LastLogin.Equal(at) {
		t.Fatalf("phone %+v", p)
	}
	// A later login keeps the client name.
	ok(t, cs.RecordDeviceLogin(ctx, a.ID, "phone", store.DeviceLogin{At: at.Add(time.Hour), Remote: "198.51.100.1", Proto: "pop3"}))
	devs = must[[]store.Device](t)(cs.Devices(ctx, a.ID))
	if p := devs[1]; p.LastClient != "K-9 Mail 6.8" || p.LastProto != "pop3" || !p.LastLogin.Equal(at.Add(time.Hour)) {
		t.Fatalf("phone after a second login %+v", p)
	}
	// The device without a password is given one.
	if l := must[*store.Device](t)(cs.AddDevice(ctx, a.ID, "laptop", "hl", "sl")); l.PasswordHash != "hl" || l.LastProto != "pop3" {
		t.Fatalf("laptop given a password %+v", l)
	}

	// Revocation: the password goes, an event says so, other devices and
	// accounts keep theirs.
	ok(t, cs.RevokeDevice(ctx, a.ID, "phone"))
	ev := waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventDeviceRevoked })
	if ev.Name != "phone" || ev.Account != a.ID {
		t.Fatalf("revocation event %+v", ev)
	}
	devs = must[[]store.Device](t)(cs.Devices(ctx, a.ID))
	if p := devs[1]; p.PasswordHash != "" || p.SCRAM != "" || p.Revoked.IsZero() || p.LastClient != "K-9 Mail 6.8" {
		t.Fatalf("revoked phone %+v", p)
	}
	if devs[0].PasswordHash != "hl" {
		t.Fatalf("revocation touched another device: %+v", devs[0])
	}
	if bd := must[[]store.Device](t)(cs.Devices(ctx, b.ID)); len(bd) != 1 || bd[0].PasswordHash != "hb" {
		t.Fatalf("revocation touched another account: %+v", bd)
	}
	for _, ev := range subB.Drain() {
		if ev.Kind == store.EventDeviceRevoked {
			t.Fatalf("other account got %+v", ev)
		}
	}
	wantErr(t, cs.RevokeDevice(ctx, a.ID, "nosuch"), store.ErrNotFound)
	// A device known only from its POP3 views can be revoked too.
	ok(t, s.HidePOP3(ctx, a.ID, "tablet", inbox.ID, mail.NewUIDSet(1)))
	ok(t, cs.RevokeDevice(ctx, a.ID, "tablet"))
	devs = must[[]store.Device](t)(cs.Devices(ctx, a.ID))
	if len(devs) != 3 || devs[2].Name != "tablet" || devs[2].Revoked.IsZero() {
		t.Fatalf("devices after revoking a POP3 view %+v", devs)
	}
	// A revoked device given a new password is no longer revoked.
	if p := must[*store.Device](t)(cs.AddDevice(ctx, a.ID, "phone", "h3", "s3")); p.PasswordHash != "h3" || !p.Revoked.IsZero() {
		t.Fatalf("phone re-added %+v", p)
	}

	// Forget: only a device without a password.
	wantErr(t, cs.ForgetDevice(ctx, a.ID, "phone"), store.ErrExists)
	ok(t, cs.ForgetDevice(ctx, a.ID, "tablet"))
	wantErr(t, cs.ForgetDevice(ctx, a.ID, "tablet"), store.ErrNotFound)

	// Unknown accounts.
	_, err = cs.AddDevice(ctx, 999999, "x", "h", "s")
	wantErr(t, err, store.ErrNotFound)
	_, err = cs.Devices(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, cs.RecordDeviceLogin(ctx, 999999, "x", store.DeviceLogin{At: at}), store.ErrNotFound)

	// Devices go with their account.
	ok(t, s.DeleteAccount(ctx, a.ID))
	_, err = cs.Devices(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
}
