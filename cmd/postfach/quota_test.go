package main

import (
	"strings"
	"testing"
)

// TestUserQuota: `postfach user quota` shows and sets an account's quota,
// and `postfach deliver` refuses a full mailbox with EX_TEMPFAIL while a
// mailbox under its quota takes a message that takes it over; on the
// store directly and through a running server.
func TestUserQuota(t *testing.T) {
	cfg := testConfig(t, "\n[limits]\nquota = \"2KiB\"\n")
	msg := "Subject: quota\n\n" + strings.Repeat("q", 1400) + "\n"
	for _, viaServer := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "server"}[viaServer]
		t.Run(name, func(t *testing.T) {
			var srv *serverProc
			if viaServer {
				srv = startServe(t, cfg)
			}
			user, other := "alice-"+name+"@example.org", "bob-"+name+"@example.org"
			run := func(stdin string, code int, args ...string) result {
				t.Helper()
				r := runBin(t, stdin, append(args, "--config", cfg)...)
				if r.code != code {
					t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
				}
				return r
			}
			run("secret-pw\n", 0, "user", "add", user, "--password-stdin")
			run("secret-pw\n", 0, "user", "add", other, "--password-stdin")
			out := run("", 0, "user", "quota", user).stdout
			want := user + "\n  storage   0B (0 bytes) of 2KiB (limits.quota), 0%\n  messages  0 of no limit (limits.quota_messages)\n"
			if out != want {
				t.Fatalf("user quota:\n%s\nwant:\n%s", out, want)
			}
			// Under the quota: the message goes in, even the one that
			// takes the mailbox over.
			run(msg, 0, "deliver", "--to", user)
			run(msg, 0, "deliver", "--to", user)
			// Full: a temporary failure, so that the MTA keeps the message.
			r := run(msg, exTempFail, "deliver", "--to", user)
			if !strings.Contains(r.stderr, "mailbox full") {
				t.Fatalf("deliver to a full mailbox: %s", r.stderr)
			}
			run(msg, 0, "deliver", "--to", other)
			out = run("", 0, "user", "quota", user).stdout
			if !strings.Contains(out, "  messages  2 of no limit") || !strings.Contains(out, "of 2KiB (limits.quota), 1") ||
				!strings.Contains(out, "over the quota: new mail is refused") {
				t.Fatalf("user quota over the quota:\n%s", out)
			}
			// Its own quota.
			out = run("", 0, "user", "quota", user, "10KiB").stdout
			if !strings.Contains(out, "of 10KiB (own quota), ") || strings.Contains(out, "over the quota") {
				t.Fatalf("user quota 10KiB:\n%s", out)
			}
			run(msg, 0, "deliver", "--to", user)
			out = run("", 0, "user", "quota", user, "none", "--messages", "3").stdout
			if !strings.Contains(out, "of no limit (own quota)\n") || !strings.Contains(out, "  messages  3 of 3 (own quota), 100%") {
				t.Fatalf("user quota none --messages 3:\n%s", out)
			}
			if r := run(msg, exTempFail, "deliver", "--to", user); !strings.Contains(r.stderr, "mailbox full") {
				t.Fatalf("deliver at the message limit: %s", r.stderr)
			}
			// --messages alone leaves the storage limit as it is.
			out = run("", 0, "user", "quota", user, "--messages", "default").stdout
			if !strings.Contains(out, "of no limit (own quota)\n") || !strings.Contains(out, "  messages  3 of no limit (limits.quota_messages)") {
				t.Fatalf("user quota --messages default:\n%s", out)
			}
			out = run("", 0, "user", "quota", user, "default").stdout
			if !strings.Contains(out, "of 2KiB (limits.quota)") {
				t.Fatalf("user quota default:\n%s", out)
			}
			run("", exitUsage, "user", "quota", user, "lots")
			run("", exitUsage, "user", "quota", user, "1GiB", "--messages", "-4")
			run("", exitUsage, "user", "quota")
			if r := run("", exitError, "user", "quota", "nobody@example.org"); !strings.Contains(r.stderr, "no such account") {
				t.Fatalf("user quota of an unknown account: %s", r.stderr)
			}
			run("", 0, "check")
			if viaServer {
				if logs := srv.logs(); !strings.Contains(logs, "op=user.quota") || !strings.Contains(logs, "op=user.setquota") {
					t.Fatalf("server log shows no quota requests:\n%s", logs)
				}
				srv.stop()
			}
		})
	}
}
