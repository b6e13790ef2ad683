package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

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
		"sending (submission): port 1465 with TLS, or port 1587 with STARTTLS\n",
		"postfach device revoke alice@example.org phone",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// TestDeviceAddSetupLink: with listen.web on, device add prints the setup
// link and a QR code that decodes to it (on the store and through a
// running server); device setup prints a new password and link. With
// listen.web off, both say how to turn it on.
func TestDeviceAddSetupLink(t *testing.T) {
	cfg := testConfig(t, "\n[web]\npublic_url = \"https://mail.example.org\"\n")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(body), "web = \"\"", "web = \"127.0.0.1:0\"", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}
	// check reads the link and the QR code from the output.
	check := func(r result) string {
		t.Helper()
		link := ""
		for _, l := range strings.Split(r.stdout, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "setup link:"); ok {
				link = strings.TrimSpace(v)
			}
		}
		if r.code != 0 || !strings.HasPrefix(link, "https://mail.example.org/setup/") || strings.Contains(r.stdout, qrColors) {
			t.Fatalf("output: %+v", r)
		}
		// The QR code: the lines of block characters after the link.
		var qrLines []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "  ") && strings.ContainsAny(l, qrBoth+qrTop+qrBottom) {
				qrLines = append(qrLines, l)
			}
		}
		if len(qrLines) < 10 {
			t.Fatalf("no QR code in %q", r.stdout)
		}
		// Its blank first and last lines are the quiet zone, all spaces.
		width := len([]rune(strings.TrimPrefix(qrLines[0], "  ")))
		blank := "  " + strings.Repeat(" ", width)
		mods := qrModules(t, strings.Join(append(append([]string{blank, blank}, qrLines...), blank, blank), "\n")+"\n", "  ")
		bmp, err := gozxing.NewBinaryBitmapFromImage(qrImage(mods, 3))
		if err != nil {
			t.Fatal(err)
		}
		res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if err != nil || res.GetText() != link {
			t.Fatalf("QR code: %v %v, want %q", res, err, link)
		}
		return link
	}
	l1 := check(runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "phone"))
	r := runBin(t, "", "device", "setup", "--config", cfg, "alice@example.org", "phone")
	if l2 := check(r); l2 == l1 || !strings.Contains(r.stdout, "old password and link no longer work") {
		t.Fatalf("device setup: %+v", r)
	}
	p := startServe(t, cfg)
	defer p.stop()
	check(runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "laptop"))
	check(runBin(t, "", "device", "setup", "--config", cfg, "alice@example.org", "laptop"))
	if r := runBin(t, "", "device", "setup", "--config", cfg, "alice@example.org", "tablet"); r.code != exitError || !strings.Contains(r.stderr, "postfach device add alice@example.org tablet") {
		t.Fatalf("setup of an unknown device: %+v", r)
	}
	if r := runBin(t, "", "device", "add", "--config", cfg, "alice@example.org", "laptop"); r.code != exitError || !strings.Contains(r.stderr, "postfach device setup alice@example.org laptop") {
		t.Fatalf("second add: %+v", r)
	}

	off := testConfig(t, "")
	if r := runBin(t, "password\n", "user", "add", "--config", off, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}
	r = runBin(t, "", "device", "add", "--config", off, "alice@example.org", "phone")
	if r.code != 0 || strings.Contains(r.stdout, "setup link:") || !strings.Contains(r.stdout, "need the web\n  listener: set listen.web") {
		t.Fatalf("device add without listen.web: %+v", r)
	}
	if r = runBin(t, "", "device", "setup", "--config", off, "alice@example.org", "phone"); r.code != exitError || !strings.Contains(r.stderr, "set listen.web") {
		t.Fatalf("device setup without listen.web: %+v", r)
	}
}
