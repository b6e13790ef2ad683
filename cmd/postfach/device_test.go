package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store/sqlite"
)

// TestDeviceCommands runs device list and device forget with the real
// binary, on the store (no server running) and through a running server's
// admin socket.
func TestDeviceCommands(t *testing.T) {
	cfg := testConfig(t, "")
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}
	r := runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.Contains(r.stdout, "no POP3 devices") {
		t.Fatalf("device list of an account without devices: %+v", r)
	}
	// Devices appear when a POP3 client logs in as ADDRESS#DEVICE; here
	// their state is written to the store directly.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data"), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := st.Account(ctx, "alice@example.org")
	inbox, _ := st.Mailbox(ctx, a.ID, "INBOX")
	for _, dev := range []string{"laptop", "office-pc"} {
		if err := st.HidePOP3(ctx, a.ID, dev, inbox.ID, mail.NewUIDSet(1, 2)); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "laptop done=2 created=") || !strings.Contains(r.stdout, "\noffice-pc done=2 ") {
		t.Fatalf("device list: %+v", r)
	}
	if r = runBin(t, "", "device", "forget", "--config", cfg, "alice@example.org", "Laptop"); r.code != 0 {
		t.Fatalf("device forget: %+v", r)
	}
	if r = runBin(t, "", "device", "forget", "--config", cfg, "alice@example.org", "laptop"); r.code != exitError || !strings.Contains(r.stderr, "has no device") {
		t.Fatalf("forget twice: %+v", r)
	}
	if r = runBin(t, "", "device", "forget", "--config", cfg, "alice@example.org", "a/b"); r.code != exitUsage {
		t.Fatalf("forget a bad name: %+v", r)
	}
	if r = runBin(t, "", "device", "list", "--config", cfg, "nobody@example.org"); r.code != exitError || !strings.Contains(r.stderr, "no such account") {
		t.Fatalf("list of an unknown account: %+v", r)
	}
	if r = runBin(t, "", "device"); r.code != exitUsage || !strings.Contains(r.stderr, "want one of list, forget") {
		t.Fatalf("device without subcommand: %+v", r)
	}

	// Through the running server.
	p := startServe(t, cfg)
	defer p.stop()
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "office-pc done=2 ") {
		t.Fatalf("device list via the server: %+v", r)
	}
	if r = runBin(t, "", "device", "forget", "--config", cfg, "alice@example.org", "office-pc"); r.code != 0 {
		t.Fatalf("device forget via the server: %+v", r)
	}
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.Contains(r.stdout, "no POP3 devices") {
		t.Fatalf("device list after forget: %+v", r)
	}
}
