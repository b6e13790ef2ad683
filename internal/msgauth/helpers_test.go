package msgauth

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// memKeys is a KeySource in memory.
type memKeys map[string][]store.DKIMKey

func (m memKeys) DKIMKeys(_ context.Context, domain string) ([]store.DKIMKey, error) {
	return m[domain], nil
}

// genKeys makes the keys of domain under selector and their DNS records
// (name -> text).
func genKeys(t *testing.T, domain, selector string) ([]store.DKIMKey, map[string]string) {
	t.Helper()
	keys, err := GenerateKeys(domain, selector)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]string{}
	for i := range keys {
		r, err := DNSRecord(&keys[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[r.Name] = r.Value
	}
	return keys, recs
}

// dkimpyPython returns a python3 that has Debian's dkim module
// (python3-dkim), the independent DKIM implementation of these tests;
// with POSTFACH_REQUIRE_TOOLS=1 (CI) a missing one fails the test.
func dkimpyPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import dkim").Run() == nil {
			return path
		}
		tried = append(tried, path)
	}
	if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
		t.Fatalf("python3 with the dkim module (Debian's python3-dkim) not found (tried %v) and POSTFACH_REQUIRE_TOOLS=1", tried)
	}
	t.Skipf("python3-dkim not installed (set POSTFACH_REQUIRE_TOOLS=1 to make this a failure)")
	return ""
}

// dkimpy runs testdata/dkimpy.py with args and msg on its standard input.
func dkimpy(t *testing.T, msg []byte, args ...string) string {
	t.Helper()
	py := dkimpyPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join("testdata", "dkimpy.py")}, args...)...)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy %v: %v\n%s", args[0], err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("dkimpy: %s", stderr.String())
	}
	return string(out)
}

// dkimpyVerify verifies msg's signatures with dkimpy against recs and
// returns one "pass d= s=" or "fail d= s=" line per signature.
func dkimpyVerify(t *testing.T, msg []byte, recs map[string]string) []string {
	t.Helper()
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "records.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(dkimpy(t, msg, "verify", f)), "\n")
}
