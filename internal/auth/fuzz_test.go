package auth

import (
	"context"
	"testing"
)

// FuzzSCRAM feeds arbitrary client messages to the SCRAM server: it must
// answer every one with a challenge or an error, never sign anyone in
// without the password, and never panic. The account alice@example.org
// has SCRAM keys for "correct horse" and a device.
func FuzzSCRAM(f *testing.F) {
	ctx := context.Background()
	f.Add([]byte("n,,n=alice@example.org,r=abc"), []byte("c=biws,r=abc,p=AAAA"), false)
	f.Add([]byte("n,a=alice@example.org,n=alice@example.org#phone,r=x"), []byte("c=biws,r=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), false)
	f.Add([]byte("p=tls-exporter,,n=a=2Cb=3D,r=x,ext"), []byte("c=cD10bHMtZXhwb3J0ZXIsLA==,r=x,e=1,p=AA=="), true)
	f.Add([]byte("y,,m=x,n=u,r=n"), []byte(",p="), false)
	f.Add([]byte("n,,n=nobody@example.org,r=\x00"), []byte("c=,r=,p=,p="), false)
	s, st, acct := newSQLiteService(f, Options{Guard: GuardOptions{IPDelayAfter: -1, IPBlockAfter: -1, AccountDelayAfter: -1}})
	if _, err := st.SetAccountSCRAM(ctx, acct.ID, acct.PasswordHash, ComputeSCRAM("correct horse", []byte("0123456789abcdef"), 4096)); err != nil {
		f.Fatal(err)
	}
	if _, _, err := AddDevice(ctx, st, acct, "phone"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final []byte, plus bool) {
		mech := "SCRAM-SHA-256"
		if plus {
			mech = "SCRAM-SHA-256-PLUS"
		}
		m, err := s.NewSASL(mech, ConnInfo{Service: "imap"})
		if err != nil {
			return // -PLUS without TLS
		}
		if _, p, err := m.Next(ctx, first); err != nil || p != nil {
			if p != nil {
				t.Fatalf("signed in after the first message %q", first)
			}
			return
		}
		if _, p, err := m.Next(ctx, final); p != nil || err != nil {
			if p != nil {
				t.Fatalf("signed in with %q %q", first, final)
			}
			return
		}
		t.Fatalf("a made-up proof was accepted: %q %q", first, final)
	})
}
