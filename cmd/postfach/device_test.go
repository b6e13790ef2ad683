package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/config"
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
	if r.code != 0 || !strings.Contains(r.stdout, "no devices") {
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
	if r.code != 0 || !strings.HasPrefix(r.stdout, "laptop last_login=never password=no pop3_done=2 created=") || !strings.Contains(r.stdout, "\noffice-pc last_login=never password=no pop3_done=2 ") {
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
	if r = runBin(t, "", "device"); r.code != exitUsage || !strings.Contains(r.stderr, "want one of add, list, revoke, forget") {
		t.Fatalf("device without subcommand: %+v", r)
	}

	// Through the running server.
	p := startServe(t, cfg)
	defer p.stop()
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "office-pc last_login=never password=no pop3_done=2 ") {
		t.Fatalf("device list via the server: %+v", r)
	}
	if r = runBin(t, "", "device", "forget", "--config", cfg, "alice@example.org", "office-pc"); r.code != 0 {
		t.Fatalf("device forget via the server: %+v", r)
	}
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.Contains(r.stdout, "no devices") {
		t.Fatalf("device list after forget: %+v", r)
	}
}

// TestDeviceAddRevoke runs device add, list and revoke with the real
// binary, on the store and through a running server.
func TestDeviceAddRevoke(t *testing.T) {
	cfg := testConfig(t, "")
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}
	r := runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "Phone")
	pw := devicePasswordOf(t, r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "user name:  alice@example.org\n") || !strings.Contains(r.stdout, "server:     mx.test.example\n") {
		t.Fatalf("device add: %+v", r)
	}
	if len(strings.ReplaceAll(pw, " ", "")) != 28 {
		t.Fatalf("password %q", pw)
	}
	if r = runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "phone"); r.code != exitError || !strings.Contains(r.stderr, "revoke it first") {
		t.Fatalf("second add: %+v", r)
	}
	if r = runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "a b"); r.code != exitUsage {
		t.Fatalf("bad name: %+v", r)
	}
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "phone last_login=never password=yes pop3_done=0 created=") {
		t.Fatalf("list: %+v", r)
	}
	p := startServe(t, cfg)
	defer p.stop()
	r = runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "laptop")
	if r.code != 0 || devicePasswordOf(t, r.stdout) == pw {
		t.Fatalf("device add via the server: %+v", r)
	}
	if r = runBin(t, "", "device", "revoke", "--config", cfg, "alice@example.org", "phone"); r.code != 0 || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("revoke: %+v", r)
	}
	if r = runBin(t, "", "device", "revoke", "--config", cfg, "alice@example.org", "tablet"); r.code != exitError || !strings.Contains(r.stderr, "has no device") {
		t.Fatalf("revoke an unknown device: %+v", r)
	}
	r = runBin(t, "", "device", "list", "--config", cfg, "alice@example.org")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "laptop last_login=never password=yes ") ||
		!strings.HasPrefix(lines[1], "phone last_login=never password=revoked ") || !strings.Contains(lines[1], " revoked=") {
		t.Fatalf("list after revoke: %+v", r)
	}
}

// devicePasswordOf finds the password in the output of device add.
func devicePasswordOf(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "password:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no password in %q", out)
	return ""
}

// TestDeviceSetupText: device add names the ports of the listeners that
// are on, from the config.
func TestDeviceSetupText(t *testing.T) {
	cfg := config.Default()
	cfg.Hostname = "mail.example.org"
	cfg.Listen.POP3 = ""
	var b strings.Builder
	writeDeviceSetup(&b, cfg, "alice@example.org", &admin.NewDevice{Password: "abcdefghjkmnpqrstuvwxyz23456", Device: admin.Device{Name: "phone"}}, false)
	out := b.String()
	for _, want := range []string{
		"password:   abcd efgh jkmn pqrs tuvw xyz2 3456\n",
		"user name:  alice@example.org\n",
		"server:     mail.example.org\n",
		"IMAP:       port 1993 with TLS, or port 1143 with STARTTLS\n",
		"POP3:       port 1995 with TLS\n",
		"sending (submission): port 1465 with TLS, or port 1587 with STARTTLS (not served",
		"postfach device revoke alice@example.org phone",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
