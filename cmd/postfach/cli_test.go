package main

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/store/sqlite"
	"github.com/postfach/postfach/internal/testenv"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args      []string
		pos       []string
		stdin, ok bool
	}{
		{[]string{"alice@example.org", "--password-stdin"}, []string{"alice@example.org"}, true, true},
		{[]string{"--password-stdin", "alice@example.org"}, []string{"alice@example.org"}, true, true},
		{[]string{"--config", "x.toml", "a", "b"}, []string{"a", "b"}, false, true},
		{[]string{"a", "--config=x.toml", "b"}, []string{"a", "b"}, false, true},
		{[]string{"a", "--", "--password-stdin"}, []string{"a", "--password-stdin"}, false, true},
		{[]string{"--bogus", "a"}, nil, false, false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		fs.String("config", "", "")
		stdin := fs.Bool("password-stdin", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if (err == nil) != tt.ok {
			t.Errorf("%v: err %v", tt.args, err)
			continue
		}
		if tt.ok && (!slices.Equal(pos, tt.pos) || *stdin != tt.stdin) {
			t.Errorf("%v: positional %q stdin %v", tt.args, pos, *stdin)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, c := range commands() {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		args := append(strings.Fields(c.name), "--help")
		if code := run(context.Background(), e, args); code != 0 {
			t.Errorf("%v: exit %d, stderr %s", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "usage: postfach "+c.name) || !strings.Contains(out.String(), "-config") {
			t.Errorf("%v: help output %q", args, out.String())
		}
	}
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"frobnicate"}); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		r := runBin(t, "", arg)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "postfach ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("postfach %s: %+v", arg, r)
		}
	}
}

// TestFormatVersion: the version names the VCS revision go build embeds
// from a git checkout, and says when the tree was modified.
func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207141317-2a5e6740bcfe"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "2a5e6740bcfea48ba37e97eee1067b3aca860b04"},
		{Key: "vcs.time", Value: "2026-12-07T14:13:17Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := formatVersion("", bi)
	want := "postfach v0.0.0-20261207141317-2a5e6740bcfe (revision 2a5e6740bcfea48ba37e97eee1067b3aca860b04+modified, 2026-12-07T14:13:17Z) " + runtime.Version()
	if !strings.HasPrefix(got, want) {
		t.Errorf("formatVersion = %q, want prefix %q", got, want)
	}
	if got := formatVersion("1.2.3", bi); !strings.HasPrefix(got, "postfach 1.2.3 (revision 2a5e") {
		t.Errorf("with -ldflags version: %q", got)
	}
	if got := formatVersion("", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}); !strings.HasPrefix(got, "postfach devel "+runtime.Version()) {
		t.Errorf("without VCS information: %q", got)
	}
}

func TestBadConfig(t *testing.T) {
	cfg := testConfig(t, "\n[limits]\nrecipients = 5\n")
	r := runBin(t, "", "serve", "--config", cfg)
	if r.code != exConfig || !strings.Contains(r.stderr, "postfach.toml:22: limits.recipients: must be at least 100") {
		t.Fatalf("serve with a bad config: %+v", r)
	}
	r = runBin(t, "", "check", "--config", cfg)
	if r.code != exConfig {
		t.Fatalf("check with a bad config: %+v", r)
	}
}

// TestUserCommands runs the user commands on the store directly (no server)
// and then through a running server.
func TestUserCommands(t *testing.T) {
	cfg := testConfig(t, "")
	for _, viaServer := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "server"}[viaServer]
		t.Run(name, func(t *testing.T) {
			var srv *serverProc
			if viaServer {
				srv = startServe(t, cfg)
			}
			user := "alice-" + name + "@example.org"
			ok := func(r result) result {
				t.Helper()
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				return r
			}
			ok(runBin(t, "secret-pw\n", "user", "add", user, "--config", cfg, "--password-stdin"))
			// Flags before the argument work the same.
			ok(runBin(t, "secret-pw\n", "user", "add", "--password-stdin", "--config", cfg, "Bob-"+name+"@example.org"))
			if r := runBin(t, "secret-pw\n", "user", "add", "--config", cfg, "--password-stdin", strings.ToUpper(user)); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
				t.Fatalf("duplicate add: %+v", r)
			}
			if r := runBin(t, "", "user", "add", "--config", cfg, "carol@example.org"); r.code == 0 || !strings.Contains(r.stderr, "--password-stdin") {
				t.Fatalf("add without a terminal: %+v", r)
			}
			list := ok(runBin(t, "", "user", "list", "--config", cfg)).stdout
			if !strings.Contains(list, user+" inbox=0\n") || !strings.Contains(list, "Bob-"+name+"@example.org inbox=0\n") {
				t.Fatalf("list: %q", list)
			}
			ok(runBin(t, "new-secret\n", "user", "passwd", user, "--password-stdin", "--config", cfg))
			ok(runBin(t, "", "user", "set", "--config", cfg, user, "pop3.delete", "trash"))
			if r := runBin(t, "", "user", "set", "--config", cfg, user, "pop3.delete", "shred"); r.code == 0 {
				t.Fatalf("bad setting accepted: %+v", r)
			}
			if list := ok(runBin(t, "", "user", "list", "--config", cfg)).stdout; !strings.Contains(list, user+" inbox=0 pop3.delete=trash") {
				t.Fatalf("list after set: %q", list)
			}
			if r := runBin(t, "", "user", "del", user, "--config", cfg); r.code == 0 || !strings.Contains(r.stderr, "--yes") {
				t.Fatalf("del without --yes: %+v", r)
			}
			ok(runBin(t, "", "user", "del", user, "--yes", "--config", cfg))
			if r := runBin(t, "", "user", "del", "--yes", "--config", cfg, user); r.code == 0 || !strings.Contains(r.stderr, "no such account") {
				t.Fatalf("second del: %+v", r)
			}
			ok(runBin(t, "", "check", "--config", cfg))
			if viaServer {
				// The commands went through the admin socket.
				if logs := srv.logs(); !strings.Contains(logs, "op=user.add") || !strings.Contains(logs, "op=user.del") {
					t.Fatalf("server log shows no admin requests:\n%s", logs)
				}
				srv.stop()
			}
		})
	}
}

// TestUserAddRules: a password needs at least 8 characters (or
// --generate, which prints a random one), and an account outside the local
// domains needs --force.
func TestUserAddRules(t *testing.T) {
	cfg := testConfig(t, "")
	if r := runBin(t, "x\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code == 0 || !strings.Contains(r.stderr, "at least 8") {
		t.Fatalf("one-character password: %+v", r)
	}
	if r := runBin(t, "1234567\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code == 0 || !strings.Contains(r.stderr, "at least 8") {
		t.Fatalf("seven-character password: %+v", r)
	}
	r := runBin(t, "", "user", "add", "--config", cfg, "--generate", "alice@example.org")
	pw, found := strings.CutPrefix(r.stdout, "account alice@example.org created\npassword: ")
	pw = strings.TrimSuffix(pw, "\n")
	if r.code != 0 || !found || len(pw) < 20 {
		t.Fatalf("--generate: %+v", r)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data"), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.Account(context.Background(), "alice@example.org")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := auth.VerifyPassword(a.PasswordHash, pw); err != nil || !ok {
		t.Fatalf("the generated password does not verify: %v %v", ok, err)
	}
	if r := runBin(t, "12345678\n", "user", "passwd", "--config", cfg, "--password-stdin", "--generate", "alice@example.org"); r.code == 0 {
		t.Fatalf("--generate with --password-stdin: %+v", r)
	}
	if r := runBin(t, "", "user", "passwd", "--config", cfg, "--generate", "alice@example.org"); r.code != 0 || !strings.Contains(r.stdout, "password: ") {
		t.Fatalf("passwd --generate: %+v", r)
	}
	if r := runBin(t, "a-long-password\n", "user", "add", "--config", cfg, "--password-stdin", "bob@elsewhere.example"); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("account outside the local domains: %+v", r)
	}
	if r := runBin(t, "a-long-password\n", "user", "add", "--config", cfg, "--password-stdin", "--force", "bob@elsewhere.example"); r.code != 0 || !strings.Contains(r.stderr, "warning") {
		t.Fatalf("--force: %+v", r)
	}
	if list := runBin(t, "", "user", "list", "--config", cfg).stdout; !strings.Contains(list, "bob@elsewhere.example") || !strings.Contains(list, "alice@example.org") {
		t.Fatalf("list: %q", list)
	}
}

func TestDeliverExitCodes(t *testing.T) {
	cfg := testConfig(t, "")
	if r := runBin(t, "password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	msg := "Subject: deliver\n\nhello\n"
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"delivered", msg, []string{"--to", "alice@example.org", "--from", "bob@remote.example"}, 0},
		{"subaddress", msg, []string{"--to", "Alice+tag@Example.org"}, 0},
		{"mailbox", msg, []string{"--mailbox", "Archive", "--to", "alice@example.org"}, 0},
		{"unknown user", msg, []string{"--to", "nobody@example.org"}, exNoUser},
		{"not local", msg, []string{"--to", "alice@elsewhere.example"}, exNoUser},
		{"empty", "", []string{"--to", "alice@example.org"}, exDataErr},
		{"too big", strings.Repeat("x", 70<<10), []string{"--to", "alice@example.org"}, exDataErr},
		{"no recipient", msg, nil, exUsageSysex},
	}
	for _, viaServer := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "server"}[viaServer], func(t *testing.T) {
			var srv *serverProc
			if viaServer {
				srv = startServe(t, cfg)
			}
			for _, tt := range tests {
				args := append([]string{"deliver", "--config", cfg}, tt.args...)
				if r := runBin(t, tt.stdin, args...); r.code != tt.code {
					t.Errorf("%s: exit %d, want %d; stderr %s", tt.name, r.code, tt.code, r.stderr)
				}
			}
			if viaServer {
				srv.stop()
			}
		})
	}
	// Three good deliveries per run, two runs: two to INBOX each.
	if r := runBin(t, "", "user", "list", "--config", cfg); r.code != 0 || r.stdout != "alice@example.org inbox=4\n" {
		t.Errorf("user list: %+v", r)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: filepath.Join(filepath.Dir(cfg), "data"), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := testenv.ReadMailbox(context.Background(), st, "alice@example.org", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	archive, err := testenv.ReadMailbox(context.Background(), st, "alice@example.org", "Archive")
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 4 || len(archive) != 2 {
		t.Errorf("INBOX %d, Archive %d; want 4 and 2", len(inbox), len(archive))
	}
	if len(inbox) > 0 && !strings.HasPrefix(string(inbox[0]), "Return-Path: <bob@remote.example>\r\nReceived: by mx.test.example (postfach) with local") {
		t.Errorf("first message:\n%s", inbox[0])
	}
	if len(inbox) > 0 && !strings.HasSuffix(string(inbox[0]), "\r\nSubject: deliver\r\n\r\nhello\r\n") {
		t.Errorf("LF not converted to CRLF:\n%q", inbox[0])
	}

	// The store is held by another process that does not answer on the
	// admin socket: a temporary failure, said clearly.
	r := runBin(t, msg, "deliver", "--config", cfg, "--to", "alice@example.org")
	if r.code != exTempFail || !strings.Contains(r.stderr, "locked by a running postfach") {
		t.Errorf("deliver while the store is locked: %+v", r)
	}
	st.Close()
}
