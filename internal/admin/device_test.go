package admin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// TestDevices lists and forgets POP3 device views, on the store and over
// the admin socket.
func TestDevices(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops := &Ops{Store: st}
	if err := ops.UserAdd(ctx, "alice@example.org", "hash"); err != nil {
		t.Fatal(err)
	}
	a, _ := st.Account(ctx, "alice@example.org")
	inbox, _ := st.Mailbox(ctx, a.ID, "INBOX")
	for dev, uids := range map[string]mail.UIDSet{"laptop": mail.NewUIDSet(1, 2, 3), "office-pc": nil, "": mail.NewUIDSet(9)} {
		if err := st.HidePOP3(ctx, a.ID, dev, inbox.ID, uids); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ops, nil)
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	client, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range []API{ops, client} {
		devs, err := api.DeviceList(ctx, "Alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 2 || devs[0].Name != "laptop" || devs[0].Hidden != 3 || devs[1].Name != "office-pc" || devs[1].Hidden != 0 || devs[0].LastUsed.IsZero() {
			t.Fatalf("%T: devices %+v", api, devs)
		}
		if _, err := api.DeviceList(ctx, "nobody@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%T: list of an unknown account: %v", api, err)
		}
		if err := api.DeviceForget(ctx, "alice@example.org", "bad/name"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%T: forget a bad name: %v", api, err)
		}
		if err := api.DeviceForget(ctx, "alice@example.org", "tablet"); !errors.Is(err, ErrNoDevice) {
			t.Errorf("%T: forget an unknown device: %v", api, err)
		}
	}
	if err := client.DeviceForget(ctx, "alice@example.org", "Laptop"); err != nil {
		t.Fatal(err)
	}
	devs, err := ops.DeviceList(ctx, "alice@example.org")
	if err != nil || len(devs) != 1 || devs[0].Name != "office-pc" {
		t.Fatalf("after forget: %+v %v", devs, err)
	}
	if v, _ := st.POP3View(ctx, a.ID, "", inbox.ID); !v.Hidden.Contains(9) {
		t.Error("forgetting a device touched the plain maildrop's view")
	}
}

// TestDeviceSetupLinks: device add makes a setup link whose token opens
// the device's password in the store; device setup gives the device a new
// password with a new link, and the old link stops working. On the store
// and over the admin socket.
func TestDeviceSetupLinks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	ops := &Ops{Store: st, Credentials: st, SetupLinks: st, SetupURL: "https://mail.example.org/", Now: func() time.Time { return now }}
	if err := ops.UserAdd(ctx, "alice@example.org", "account password"); err != nil {
		t.Fatal(err)
	}
	a, _ := st.Account(ctx, "alice@example.org")
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ops, nil)
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	client, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	// opens returns the password the link's token opens.
	opens := func(link string) (string, error) {
		t.Helper()
		tok, ok := strings.CutPrefix(link, "https://mail.example.org/setup/")
		if !ok {
			t.Fatalf("link %q", link)
		}
		raw, ok := auth.ParseSetupToken(tok)
		if !ok {
			t.Fatalf("token %q", tok)
		}
		l, err := st.SetupLink(ctx, auth.SetupLinkID(raw))
		if err != nil {
			return "", err
		}
		return auth.OpenSetupPassword(raw, a.ID, l.Device, l.Sealed)
	}
	for i, api := range []API{ops, client} {
		dev := []string{"phone", "tablet"}[i]
		nd, err := api.DeviceAdd(ctx, "alice@example.org", dev)
		if err != nil {
			t.Fatal(err)
		}
		if nd.SetupError != "" || !nd.SetupExpires.Equal(now.Add(24*time.Hour)) {
			t.Fatalf("%T: device add %+v", api, nd)
		}
		if pw, err := opens(nd.SetupLink); err != nil || pw != nd.Password {
			t.Fatalf("%T: the link opens %q, %v; want the password %q", api, pw, err, nd.Password)
		}
		nd2, err := api.DeviceSetup(ctx, "alice@example.org", strings.ToUpper(dev))
		if err != nil {
			t.Fatal(err)
		}
		if nd2.Password == nd.Password || nd2.SetupLink == nd.SetupLink || nd2.Device.Name != dev || !nd2.Device.Password {
			t.Fatalf("%T: device setup %+v after %+v", api, nd2, nd)
		}
		if _, err := opens(nd.SetupLink); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%T: the old link still works: %v", api, err)
		}
		if pw, err := opens(nd2.SetupLink); err != nil || pw != nd2.Password {
			t.Fatalf("%T: the new link opens %q, %v", api, pw, err)
		}
		if _, err := api.DeviceSetup(ctx, "alice@example.org", "laptop"); !errors.Is(err, ErrNoDevice) {
			t.Errorf("%T: setup of an unknown device: %v", api, err)
		}
		if _, err := api.DeviceSetup(ctx, "nobody@example.org", "phone"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%T: setup for an unknown account: %v", api, err)
		}
	}
	// The new password is the device's: it signs in, the old one does not.
	svc := auth.New(auth.Options{Store: st, Credentials: st})
	if err := ops.DeviceRevoke(ctx, "alice@example.org", "tablet"); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.DeviceSetup(ctx, "alice@example.org", "tablet"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("setup of a revoked device: %v", err)
	}
	nd, err := ops.DeviceSetup(ctx, "alice@example.org", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := svc.Login(ctx, auth.Credentials{Username: "alice@example.org", Password: nd.Password, Service: "imap"}); err != nil || p.Device != "phone" {
		t.Fatalf("login with the new password: %+v %v", p, err)
	}

	// Links off: device add makes none, device setup says why.
	off := &Ops{Store: st, Credentials: st, SetupLinks: st}
	nd, err = off.DeviceAdd(ctx, "alice@example.org", "laptop")
	if err != nil || nd.SetupLink != "" || nd.SetupError != "" {
		t.Fatalf("device add without links: %+v %v", nd, err)
	}
	if _, err := off.DeviceSetup(ctx, "alice@example.org", "laptop"); !errors.Is(err, ErrNoSetupLinks) {
		t.Errorf("device setup without links: %v", err)
	}
}
