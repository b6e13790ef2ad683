package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, env *testenv.Env, name string) *client {
	t.Helper()
	c := env.Dial(name)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) expect(want string) {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (want %q)", err, want)
		}
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, want) {
			c.t.Fatalf("got %q, want %q", line, want)
		}
		return
	}
}

func (c *client) do(cmd, want string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, cmd+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	c.expect(want)
}

// lmtpDeliver sends one message to rcpts and expects the per-recipient
// replies.
func lmtpDeliver(t *testing.T, env *testenv.Env, body string, rcpts []string, replies ...string) {
	t.Helper()
	c := dial(t, env, "lmtp")
	c.expect("220 ")
	c.do("LHLO test", "250 ")
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	for _, r := range rcpts {
		c.do("RCPT TO:<"+r+">", "250 ")
	}
	c.do("DATA", "354 ")
	c.do(body+"\r\n.", replies[0])
	for _, r := range replies[1:] {
		c.expect(r)
	}
	c.do("QUIT", "221 ")
}

func TestDeliveryIsStoredAndSurvivesRestart(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	env.AddUser("bob@example.net", "pw")
	lmtpDeliver(t, env, "Subject: one\r\n\r\nfirst", []string{"alice@example.org", "Bob@Example.NET"}, "250 2.0.0 <alice@example.org>", "250 2.0.0 <Bob@Example.NET>")
	env.Restart()
	lmtpDeliver(t, env, "Subject: two\r\n\r\nsecond", []string{"alice+x@example.org"}, "250 2.0.0")
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("alice has %d messages, want 2", len(msgs))
	}
	if !strings.HasPrefix(string(msgs[0]), "Return-Path: <sender@remote.example>\r\nReceived: from test ([127.0.0.1])") ||
		!strings.HasSuffix(string(msgs[0]), "Subject: one\r\n\r\nfirst\r\n") {
		t.Errorf("stored message:\n%s", msgs[0])
	}
	if got := env.Messages("bob@example.net", "INBOX"); len(got) != 1 {
		t.Errorf("bob has %d messages", len(got))
	}
}

func TestPostmaster(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("admin@example.org", "pw")
	env.AddUser("alice@example.org", "pw")
	// RFC 5321 §4.5.1: postmaster@ every local domain; default: the first
	// account created.
	lmtpDeliver(t, env, "Subject: pm\r\n\r\nhi", []string{"postmaster@example.net", "PostMaster@example.org"}, "250 ", "250 ")
	if got := env.Messages("admin@example.org", "INBOX"); len(got) != 1 {
		t.Errorf("postmaster account has %d messages, want 1 (one copy for both addresses)", len(got))
	}
}

// diskFull makes Stage fail as the store does on ENOSPC while full is set.
type diskFull struct {
	store.Store
	full *atomic.Bool
}

func (d diskFull) Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error) {
	if d.full.Load() {
		io.Copy(io.Discard, r)
		return nil, fmt.Errorf("write blob: %w", store.ErrDiskFull)
	}
	return d.Store.Stage(ctx, r, maxSize)
}

func TestFullDisk(t *testing.T) {
	var full atomic.Bool
	env := testenv.Start(t, testenv.Options{WrapStore: func(s store.Store) store.Store { return diskFull{s, &full} }})
	env.AddUser("alice@example.org", "pw")
	lmtpDeliver(t, env, "Subject: before\r\n\r\nkept", []string{"alice@example.org"}, "250 ")
	full.Store(true)
	lmtpDeliver(t, env, "Subject: during\r\n\r\nrefused", []string{"alice@example.org"}, "452 4.3.1")
	c := dial(t, env, "smtp")
	c.expect("220 ")
	c.do("EHLO test", "250 ")
	c.do("MAIL FROM:<s@remote.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("DATA", "354 ")
	c.do("Subject: during smtp\r\n\r\nrefused\r\n.", "452 4.3.1")
	full.Store(false)
	lmtpDeliver(t, env, "Subject: after\r\n\r\nstored", []string{"alice@example.org"}, "250 ")
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 2 || !strings.Contains(string(msgs[0]), "Subject: before") || !strings.Contains(string(msgs[1]), "Subject: after") {
		t.Fatalf("messages after a full disk: %q", msgs)
	}
	problems, err := env.Store().Check(context.Background())
	if err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

func TestHTTP(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	lmtpDeliver(t, env, "Subject: m\r\n\r\nx", []string{"alice@example.org"}, "250 ")
	// One connection to each of IMAP and POP3, closed after the greeting.
	for name, greeting := range map[string]string{"imap": "* OK", "pop3": "+OK"} {
		c := dial(t, env, name)
		c.expect(greeting)
		c.c.Close()
	}
	get := func(path string) string {
		resp, err := http.Get("http://" + env.Addr("http") + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("/healthz = %q", got)
	}
	m := get("/metrics")
	for _, want := range []string{
		`postfach_deliveries_total{proto="lmtp",result="ok"} 1`,
		`postfach_connections_total{proto="lmtp"} 1`,
		`postfach_connections_total{proto="imap"} 1`,
		`postfach_connections_total{proto="pop3"} 1`,
		`postfach_delivery_duration_seconds_count{proto="lmtp"} 1`,
		`postfach_store_commit_duration_seconds_count`,
		`postfach_store_wal_bytes `,
		`postfach_store_database_bytes `,
		`postfach_errors_total`,
	} {
		if want == "postfach_errors_total" {
			continue // only present after an error; checked below
		}
		if strings.HasPrefix(want, "postfach_store_wal") || strings.HasPrefix(want, "postfach_store_database") {
			if env.Config.Store.Backend != config.StoreSQLite {
				continue // the SQLite files' sizes
			}
		}
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	lmtpDeliver(t, env, "Subject: m\r\n\r\nx", []string{"alice@example.org"}, "250 ")
	c := dial(t, env, "lmtp")
	c.expect("220 ")
	c.do("LHLO x", "250 ")
	c.do("MAIL FROM:<>", "250 ")
	c.do("RCPT TO:<nobody@example.org>", "550 5.1.1")
	if m := get("/metrics"); !strings.Contains(m, `postfach_errors_total{kind="unknown_user",proto="lmtp"} 1`) {
		t.Errorf("/metrics lacks the unknown_user error:\n%s", grep(m, "postfach_errors"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAdminSocket(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c, err := admin.Dial(env.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(env.Config.DataDir, admin.SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v", fi.Mode(), err)
	}
	ctx := context.Background()
	if err := c.UserAdd(ctx, "Carol@example.org", "old"); err != nil {
		t.Fatal(err)
	}
	if err := c.UserAdd(ctx, "carol@EXAMPLE.org", "old"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	if err := c.UserAdd(ctx, "not an address", "old"); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	users, err := c.UserList(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "Carol@example.org" {
		t.Fatalf("list: %v %v", users, err)
	}
	// A password change through the socket takes effect at once.
	svc := auth.New(auth.Options{Store: env.Store()})
	if _, err := svc.Login(ctx, auth.Credentials{Username: "carol@example.org", Password: "old"}); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := c.UserPasswd(ctx, "carol@example.org", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.New(auth.Options{Store: env.Store()}).Login(ctx, auth.Credentials{Username: "carol@example.org", Password: "new"}); err != nil {
		t.Fatalf("login with new password: %v", err)
	}
	if err := c.UserSet(ctx, "carol@example.org", "pop3.delete", "trash"); err != nil {
		t.Fatal(err)
	}
	if err := c.UserSet(ctx, "carol@example.org", "pop3.delete", "shred"); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("bad setting: %v", err)
	}
	res, err := c.Deliver(ctx, admin.DeliverRequest{To: []string{"carol@example.org", "nobody@example.org"}, From: "x@y.example", Mailbox: "Archive"},
		strings.NewReader("Subject: via socket\n\nhi\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errs[0] != "" || res.Codes[1] != "unknown_user" {
		t.Fatalf("deliver result: %+v", res)
	}
	if got := env.Messages("carol@example.org", "Archive"); len(got) != 1 || !strings.HasSuffix(string(got[0]), "Subject: via socket\r\n\r\nhi\r\n") {
		t.Fatalf("Archive: %q", got)
	}
	if problems, err := c.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
	if err := c.UserDel(ctx, "carol@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.UserDel(ctx, "carol@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second del: %v", err)
	}
}

// requireTool finds an outside program; with POSTFACH_REQUIRE_TOOLS=1 (as
// in CI) a missing one fails the test instead of skipping it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found and POSTFACH_REQUIRE_TOOLS=1: %v", name, err)
	}
	t.Skipf("%s not installed (set POSTFACH_REQUIRE_TOOLS=1 to make this a failure)", name)
	return ""
}

func TestPythonSmtplib(t *testing.T) {
	py := requireTool(t, "python3")
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	for _, mode := range []string{"smtp", "lmtp"} {
		host, port, _ := net.SplitHostPort(env.Addr(mode))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, py, "testdata/smtplib_client.py", mode, host, port).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("smtplib %s: %v\n%s", mode, err, out)
		}
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 2 || !strings.Contains(string(msgs[0]), "Subject: smtplib smtp") || !strings.Contains(string(msgs[1]), "with LMTP") {
		t.Fatalf("messages: %q", msgs)
	}
}

// TestCurlSMTP sends a message the way the README shows.
func TestCurlSMTP(t *testing.T) {
	curl := requireTool(t, "curl")
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	msg := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(msg, []byte("From: bob@example.com\nTo: alice@example.org\nSubject: curl\n\nHello.\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--url", "smtp://"+env.Addr("smtp"), "--mail-from", "bob@example.com",
		"--mail-rcpt", "alice@example.org", "--upload-file", msg).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Subject: curl\r\n\r\nHello.\r\n") {
		t.Fatalf("messages: %q", msgs)
	}
}

func TestSecondServerOnSameDataDirFails(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	_ = env
	cfg := *env.Config
	cfg.Listen.LMTP, cfg.Listen.SMTP, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	_, err := startRaw(&cfg)
	if err == nil || !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "stop the other postfach first") {
		t.Fatalf("second start: %v", err)
	}
	// The message reads once: the directory (the database on
	// PostgreSQL) and the lock are named once.
	where := cfg.DataDir
	if cfg.Store.Backend == config.StorePostgres {
		where = "postgres database"
	}
	if msg := err.Error(); strings.Count(msg, where) != 1 || strings.Count(msg, "locked") != 1 {
		t.Fatalf("second start: %q repeats itself", msg)
	}
}

// TestSwaks sends a message the way the README shows.
func TestSwaks(t *testing.T) {
	swaks := requireTool(t, "swaks")
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	host, port, _ := net.SplitHostPort(env.Addr("smtp"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, swaks, "--server", host, "--port", port, "--from", "bob@example.com",
		"--to", "alice@example.org", "--header", "Subject: swaks test", "--body", "Hello from swaks.").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msgs := env.Messages("alice@example.org", "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Subject: swaks test") || !strings.Contains(string(msgs[0]), "Hello from swaks.") {
		t.Fatalf("messages: %q", msgs)
	}
}

// TestPprof: the profiler is served only when debug.pprof is on.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Debug.Pprof = on }})
		resp, err := http.Get("http://" + env.Addr("http") + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode == 200; got != on {
			t.Errorf("debug.pprof=%v: GET /debug/pprof/cmdline: %s", on, resp.Status)
		}
	}
}

// TestSMTPAllOrNothing: over SMTP, with the real store, a message whose
// delivery fails for one recipient (its account deleted between RCPT and
// DATA) is stored for none and answered 451; the retry refuses that
// recipient at RCPT and stores the message once for the other.
func TestSMTPAllOrNothing(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("alice@example.org", "pw")
	bob := env.AddUser("bob@example.org", "pw")
	c := dial(t, env, "smtp")
	c.expect("220 ")
	c.do("EHLO test", "250 ")
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("RCPT TO:<bob@example.org>", "250 ")
	if err := env.Store().DeleteAccount(context.Background(), bob.ID); err != nil {
		t.Fatal(err)
	}
	c.do("DATA", "354 ")
	c.do("Subject: all or none\r\n\r\nbody\r\n.", "451 4.3.0 ")
	if got := env.Messages("alice@example.org", "INBOX"); len(got) != 0 {
		t.Fatalf("alice has %d messages after a 451", len(got))
	}
	// The client's retry.
	c.do("MAIL FROM:<sender@remote.example>", "250 ")
	c.do("RCPT TO:<alice@example.org>", "250 ")
	c.do("RCPT TO:<bob@example.org>", "550 5.1.1 ")
	c.do("DATA", "354 ")
	c.do("Subject: all or none\r\n\r\nbody\r\n.", "250 ")
	c.do("QUIT", "221 ")
	if got := env.Messages("alice@example.org", "INBOX"); len(got) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(got))
	}
}
