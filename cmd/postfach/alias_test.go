package main

import (
	"strings"
	"testing"
)

// TestAliasCommands: `postfach alias add|del|list` on the store directly
// and through a running server; `postfach deliver` to an alias, its
// +detail and a catch-all; and the refusals, each with its reason.
func TestAliasCommands(t *testing.T) {
	cfg := testConfig(t, "")
	for _, viaServer := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "server"}[viaServer]
		t.Run(name, func(t *testing.T) {
			var srv *serverProc
			if viaServer {
				srv = startServe(t, cfg)
			}
			run := func(stdin string, code int, args ...string) result {
				t.Helper()
				r := runBin(t, stdin, append(args, "--config", cfg)...)
				if r.code != code {
					t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
				}
				return r
			}
			refused := func(reason string, args ...string) {
				t.Helper()
				if r := run("", exitError, args...); !strings.Contains(r.stderr, reason) {
					t.Fatalf("%v: stderr %q, want %q", args, r.stderr, reason)
				}
			}
			addr := func(local string) string { return local + "-" + name + "@example.org" }
			alice, bob, carol := addr("alice"), addr("bob"), addr("carol")
			family, team := addr("family"), addr("team")
			for _, u := range []string{alice, bob, carol} {
				run("secret-pw\n", 0, "user", "add", u, "--password-stdin")
			}

			out := run("", 0, "alias", "add", family, bob, alice).stdout
			if out != "alias "+family+": "+alice+", "+bob+"\n" {
				t.Fatalf("alias add: %q", out)
			}
			out = run("", 0, "alias", "add", strings.ToUpper(family), carol, alice).stdout
			if out != "alias "+family+": "+alice+", "+bob+", "+carol+"\n" {
				t.Fatalf("alias add to an alias: %q", out)
			}
			run("", 0, "alias", "add", team, carol)
			run("", 0, "alias", "add", "@example.org", carol)
			out = run("", 0, "alias", "list").stdout
			want := "@example.org (catch-all): " + carol + "\n" + family + ": " + alice + ", " + bob + ", " + carol + "\n" + team + ": " + carol + "\n"
			if out != want {
				t.Fatalf("alias list:\n%s\nwant:\n%s", out, want)
			}
			if out = run("", 0, "alias", "list", "example.net").stdout; out != "" {
				t.Fatalf("alias list of another domain: %q", out)
			}
			if out = run("", 0, "alias", "list", bob).stdout; out != family+": "+alice+", "+bob+", "+carol+"\n" {
				t.Fatalf("alias list of an account: %q", out)
			}
			if out = run("", 0, "alias", "list", team).stdout; out != team+": "+carol+"\n" {
				t.Fatalf("alias list of an alias: %q", out)
			}

			// Mail to the alias and its +detail: one copy per account.
			run("Subject: family\n\nhello\n", 0, "deliver", "--to", family, "--to", strings.Replace(family, "@", "+school@", 1), "--to", alice)
			// The catch-all takes the rest.
			run("Subject: caught\n\nhello\n", 0, "deliver", "--to", addr("nobody"))
			out = run("", 0, "user", "list").stdout
			for u, n := range map[string]int{alice: 1, bob: 1, carol: 2} {
				if !strings.Contains(out, u+" inbox="+string(rune('0'+n))+"\n") {
					t.Fatalf("user list after delivering to the alias, want %s with %d:\n%s", u, n, out)
				}
			}

			// What an alias cannot be.
			refused("is an account", "alias", "add", bob, carol)
			refused("forwarding to other servers is not offered", "alias", "add", addr("out"), "someone@elsewhere.example")
			refused("is an alias, and an alias names accounts, not other aliases", "alias", "add", addr("loop"), team)
			refused("no such account", "alias", "add", addr("ghost"), addr("nobody-at-all"))
			refused("without +detail", "alias", "add", addr("x"), strings.Replace(alice, "@", "+tag@", 1))
			refused("an alias has no +detail", "alias", "add", strings.Replace(family, "@", "+kids@", 1), alice)
			refused("not one of the local domains", "alias", "add", "family@elsewhere.example", alice)
			refused("is an alias (of "+carol+")", "user", "add", team, "--generate")
			run("", exitUsage, "alias", "add", team)
			run("", exitUsage, "alias", "del")
			run("", exitUsage, "alias")

			// Taking accounts out, then the whole alias.
			refused("is not a target of the alias", "alias", "del", family, addr("nobody"))
			out = run("", 0, "alias", "del", family, bob).stdout
			if out != "alias "+family+": "+alice+", "+carol+"\n" {
				t.Fatalf("alias del of one account: %q", out)
			}
			if out = run("", 0, "alias", "del", team, carol).stdout; out != "alias "+team+" deleted\n" {
				t.Fatalf("alias del of the last account: %q", out)
			}
			if out = run("", 0, "alias", "del", family).stdout; out != "alias "+family+" deleted\n" {
				t.Fatalf("alias del: %q", out)
			}
			refused("no alias "+family, "alias", "del", family)
			if out = run("", 0, "alias", "del", "@example.org", carol).stdout; out != "alias @example.org deleted\n" {
				t.Fatalf("alias del of the catch-all: %q", out)
			}
			if out = run("", 0, "alias", "list").stdout; out != "" {
				t.Fatalf("alias list at the end: %q", out)
			}
			run("", 0, "check")
			if viaServer {
				if logs := srv.logs(); !strings.Contains(logs, "op=alias.add") || !strings.Contains(logs, "op=alias.list") {
					t.Fatalf("server log shows no alias requests:\n%s", logs)
				}
				srv.stop()
			}
		})
	}
}
