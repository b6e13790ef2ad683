package imapserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireTool finds an outside program; without it the test is skipped,
// unless POSTFACH_REQUIRE_TOOLS=1 (CI), where it fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("POSTFACH_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found and POSTFACH_REQUIRE_TOOLS=1", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// TestPythonImaplib runs testdata/imaplib_client.py: Python's imaplib logs
// in, lists, appends, selects, fetches every item, searches, sorts,
// threads, stores, copies, moves, expunges and logs out.
func TestPythonImaplib(t *testing.T) {
	py := requireTool(t, "python3")
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "first"))
	ts.deliver(acct, "INBOX", msg("two", "second"), `\Seen`)
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/imaplib_client.py", host, port, "alice@example.org", testPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib client: %v\n%s", err, out)
	}
}
