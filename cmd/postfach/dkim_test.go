package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDKIMCommands: `postfach dkim keygen|list|delete` on the store
// directly and through a running server, and the refusals with their
// reasons.
func TestDKIMCommands(t *testing.T) {
	for _, viaServer := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "server"}[viaServer]
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, "")
			if viaServer {
				startServe(t, cfg)
			}
			run := func(code int, args ...string) result {
				t.Helper()
				r := runBin(t, "", append(args, "--config", cfg)...)
				if r.code != code {
					t.Fatalf("%v: exit %d, want %d; stdout %s; stderr %s", args, r.code, code, r.stdout, r.stderr)
				}
				return r
			}
			record := regexp.MustCompile(`(?m)^(\S+)\._domainkey\.example\.org\. IN TXT "v=DKIM1; k=(rsa|ed25519); p=[A-Za-z0-9+/=]+"( "[A-Za-z0-9+/=]+")*$`)

			out := run(0, "dkim", "keygen", "example.org").stdout
			m := record.FindAllStringSubmatch(out, -1)
			if len(m) != 2 || m[0][1] != "postfach-rsa" || m[0][2] != "rsa" || m[1][1] != "postfach-ed25519" || m[1][2] != "ed25519" {
				t.Fatalf("keygen printed:\n%s", out)
			}
			// A 2048-bit key's record is split into strings of at most
			// 255 bytes (RFC 1035 §3.3.14).
			for _, s := range regexp.MustCompile(`"[^"]*"`).FindAllString(m[0][0], -1) {
				if len(s)-2 > 255 {
					t.Fatalf("TXT string of %d bytes", len(s)-2)
				}
			}
			if strings.Contains(out, "PRIVATE") {
				t.Fatalf("keygen printed a private key:\n%s", out)
			}
			if r := run(exitError, "dkim", "keygen", "example.org"); !strings.Contains(r.stderr, "choose another selector") {
				t.Fatalf("second keygen: %s", r.stderr)
			}
			if r := run(exitError, "dkim", "keygen", "example.com"); !strings.Contains(r.stderr, "not a local domain") {
				t.Fatalf("keygen for another domain: %s", r.stderr)
			}
			if r := run(exitError, "dkim", "keygen", "example.org", "--selector", "bad_selector"); !strings.Contains(r.stderr, "selector") {
				t.Fatalf("keygen with a bad selector: %s", r.stderr)
			}
			run(0, "dkim", "keygen", "example.org", "--selector", "2026")

			out = run(0, "dkim", "list").stdout
			if m := record.FindAllStringSubmatch(out, -1); len(m) != 4 || m[0][1] != "2026-ed25519" || m[3][1] != "postfach-rsa" {
				t.Fatalf("list:\n%s", out)
			}
			if out := run(0, "dkim", "list", "example.net").stdout; out != "" {
				t.Fatalf("list of a domain without keys: %q", out)
			}

			// One key by its selector, or both by the keygen selector.
			out = run(0, "dkim", "delete", "example.org", "2026-rsa").stdout
			if strings.Count(out, "deleted") != 1 {
				t.Fatalf("delete one: %s", out)
			}
			out = run(0, "dkim", "delete", "example.org", "postfach").stdout
			if strings.Count(out, "deleted") != 2 {
				t.Fatalf("delete both: %s", out)
			}
			if r := run(exitError, "dkim", "delete", "example.org", "postfach"); !strings.Contains(r.stderr, "no dkim key") {
				t.Fatalf("delete again: %s", r.stderr)
			}
			if m := record.FindAllStringSubmatch(run(0, "dkim", "list").stdout, -1); len(m) != 1 || m[0][1] != "2026-ed25519" {
				t.Fatalf("left: %v", m)
			}
		})
	}
}
