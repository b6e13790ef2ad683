package admin

import (
	"context"
	"errors"
	"testing"
	"time"

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
