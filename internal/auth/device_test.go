package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// newSQLiteService returns a Service on a real store with one account,
// alice@example.org, password "correct horse".
func newSQLiteService(t testing.TB, opt Options) (*Service, *sqlite.Store, *store.Account) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.CreateAccount(context.Background(), "Alice@Example.org", hash)
	if err != nil {
		t.Fatal(err)
	}
	opt.Store, opt.Credentials = st, st
	return New(opt), st, acct
}

func TestDevicePasswordForm(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw := GenerateDevicePassword()
		if len(pw) != DevicePasswordLen || seen[pw] {
			t.Fatalf("password %q (len %d, repeated %v)", pw, len(pw), seen[pw])
		}
		seen[pw] = true
		for _, c := range pw {
			if strings.ContainsRune("01ilo", c) || !strings.ContainsRune(devicePasswordAlphabet, c) {
				t.Fatalf("password %q has %q", pw, c)
			}
		}
		// Typed in groups, with a capital first letter, it is the same.
		typed := strings.ToUpper(pw[:1]) + FormatDevicePassword(pw)[1:]
		if n, ok := NormalizeDevicePassword(typed); !ok || n != pw {
			t.Fatalf("normalize %q = %q, %v", typed, n, ok)
		}
		if n, ok := NormalizeDevicePassword(strings.ReplaceAll(FormatDevicePassword(pw), " ", "-")); !ok || n != pw {
			t.Fatalf("normalize with dashes = %q, %v", n, ok)
		}
	}
	if g := FormatDevicePassword("abcdefghjk"); g != "abcd efgh jk" {
		t.Fatalf("groups %q", g)
	}
	for _, bad := range []string{"", "correct horse", strings.Repeat("a", DevicePasswordLen-1), strings.Repeat("0", DevicePasswordLen)} {
		if _, ok := NormalizeDevicePassword(bad); ok {
			t.Errorf("%q taken for a device password", bad)
		}
	}
	// 28 characters of 31: at least 128 bits.
	if bits := float64(DevicePasswordLen) * 4.954; bits < 128 {
		t.Fatalf("%v bits", bits)
	}
	h := HashDevicePassword("x")
	if !strings.HasPrefix(h, "$hmac-sha256$") || h == HashDevicePassword("x") {
		t.Fatalf("hash %q: not salted", h)
	}
	d, err := parseDeviceHash(h)
	if err != nil || !d.matches("x") || d.matches("y") {
		t.Fatalf("parse %v, matches", err)
	}
}

func TestDeviceLogin(t *testing.T) {
	ctx := context.Background()
	s, st, acct := newSQLiteService(t, Options{})
	phonePW, _, err := AddDevice(ctx, st, acct, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	laptopPW, _, err := AddDevice(ctx, st, acct, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := AddDevice(ctx, st, acct, "phone"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	login := func(user, pw string) (*Principal, error) {
		return s.Login(ctx, Credentials{Username: user, Password: pw, Remote: ip, Service: "imap"})
	}
	// The plain address and a device password: the device is known.
	p, err := login("alice@example.org", FormatDevicePassword(phonePW))
	if err != nil || p.Device != "phone" || p.Named {
		t.Fatalf("phone login = %+v, %v", p, err)
	}
	if p, err := login("alice@example.org", laptopPW); err != nil || p.Device != "laptop" {
		t.Fatalf("laptop login = %+v, %v", p, err)
	}
	// ADDRESS#NAME takes that device's password, not another's.
	if p, err := login("alice@example.org#PHONE", phonePW); err != nil || p.Device != "phone" || !p.Named {
		t.Fatalf("named phone login = %+v, %v", p, err)
	}
	if _, err := login("alice@example.org#phone", laptopPW); !errors.Is(err, ErrFailed) {
		t.Fatalf("phone with the laptop's password: %v", err)
	}
	// ... or the account password, which names the device.
	if p, err := login("alice@example.org#tablet", "correct horse"); err != nil || p.Device != "tablet" {
		t.Fatalf("tablet with the account password = %+v, %v", p, err)
	}
	if p, err := login("alice@example.org", "correct horse"); err != nil || p.Device != "" {
		t.Fatalf("account password = %+v, %v", p, err)
	}
	// Sign-ins are recorded.
	devs, err := st.Devices(ctx, acct.ID)
	if err != nil || len(devs) != 3 {
		t.Fatalf("devices %+v, %v", devs, err)
	}
	for _, d := range devs {
		if d.LastLogin.IsZero() || d.LastProto != "imap" || d.LastRemote != ip.String() {
			t.Errorf("device %+v: sign-in not recorded", d)
		}
	}
	// Revoked: the password stops working; ADDRESS#NAME with the account
	// password too; the other device goes on.
	if err := st.RevokeDevice(ctx, acct.ID, "phone"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"alice@example.org", phonePW}, {"alice@example.org#phone", phonePW}, {"alice@example.org#phone", "correct horse"}} {
		if p, err := login(c[0], c[1]); !errors.Is(err, ErrFailed) {
			t.Errorf("login %s after revocation = %+v, %v", c[0], p, err)
		}
	}
	if p, err := login("alice@example.org", laptopPW); err != nil || p.Device != "laptop" {
		t.Fatalf("laptop after the phone's revocation = %+v, %v", p, err)
	}
}

func TestRequireDevicePasswords(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		server  bool
		setting string
		require bool
	}{
		{"server default", true, "", true},
		{"account setting", false, "true", true},
		{"account exempt", true, "false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, st, acct := newSQLiteService(t, Options{RequireDevicePasswords: tc.server})
			if tc.setting != "" {
				if err := st.SetAccountSetting(ctx, acct.ID, RequireDevicePasswords, tc.setting); err != nil {
					t.Fatal(err)
				}
			}
			pw, _, err := AddDevice(ctx, st, acct, "phone")
			if err != nil {
				t.Fatal(err)
			}
			for _, user := range []string{"alice@example.org", "alice@example.org#phone", "alice@example.org#other"} {
				_, err := s.Login(ctx, Credentials{Username: user, Password: "correct horse", Remote: ip})
				if tc.require && !errors.Is(err, ErrFailed) || !tc.require && err != nil {
					t.Errorf("%s with the account password: %v (require %v)", user, err, tc.require)
				}
			}
			if p, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: pw, Remote: ip}); err != nil || p.Device != "phone" {
				t.Fatalf("device password = %+v, %v", p, err)
			}
		})
	}
}

// TestGuardCountsDevicePasswords: wrong device passwords count as failures
// like any other, and block the client.
func TestGuardCountsDevicePasswords(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s, st, acct := newSQLiteService(t, Options{Now: clk.now, Sleep: clk.sleep,
		Guard: GuardOptions{IPDelayAfter: -1, IPBlockAfter: 3, AccountDelayAfter: -1}})
	pw, _, err := AddDevice(ctx, st, acct, "phone")
	if err != nil {
		t.Fatal(err)
	}
	wrong := GenerateDevicePassword()
	for i := 0; i < 3; i++ {
		if _, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: wrong, Remote: ip}); !errors.Is(err, ErrFailed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: pw, Remote: ip}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("the right device password from a blocked client: %v", err)
	}
	if s.BlockedClients() != 1 {
		t.Fatalf("blocked clients %d", s.BlockedClients())
	}
	clk.advance(16 * time.Minute)
	if p, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: pw, Remote: ip}); err != nil || p.Device != "phone" {
		t.Fatalf("after the block: %+v, %v", p, err)
	}
}
