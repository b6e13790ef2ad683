package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// wantInitial is the populated account (startServer).
var wantInitial = state{
	"INBOX":        {"m1": "", "m2": "S", "m3": "", "m4": "S", "m5": "RS"},
	"Sent":         {"s1": "S", "s2": "S"},
	"Drafts":       {"d1": "DS"},
	"Archive":      {},
	"Archive/2023": {"a1": "S", "a2": "FS"},
	"Trash":        {},
	"Junk":         {},
}

// syncClient is one sync program under test.
type syncClient struct {
	name string
	// tool is the program on PATH.
	tool string
	// config writes the client's configuration into dir for a server on
	// port and returns the arguments of one sync run.
	config func(t *testing.T, dir, port string) []string
	// inbox is the directory of INBOX below the Maildir root.
	inbox string
}

var clients = []syncClient{
	{
		name: "mbsync", tool: "mbsync", inbox: "INBOX",
		config: func(t *testing.T, dir, port string) []string {
			// SSLType None: loopback plaintext (the server allows
			// passwords there); AuthMechs LOGIN, which mbsync uses
			// on a plain connection only when told to.
			rc := fmt.Sprintf(`IMAPAccount postfach
Host 127.0.0.1
Port %s
User %s
Pass "%s"
SSLType None
AuthMechs LOGIN
Timeout 20

IMAPStore remote
Account postfach

MaildirStore local
Path %s/mail/
Inbox %s/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
`, port, user, password, dir, dir)
			p := filepath.Join(dir, "mbsyncrc")
			if err := os.WriteFile(p, []byte(rc), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"-c", p, "-a"}
		},
	},
	{
		name: "offlineimap", tool: "offlineimap", inbox: "INBOX",
		config: func(t *testing.T, dir, port string) []string {
			// ssl = no and starttls = no: loopback plaintext.
			rc := fmt.Sprintf(`[general]
accounts = test
metadata = %s/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %s/mail
sep = /

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = %s
remoteuser = %s
remotepass = %s
ssl = no
starttls = no
maxconnections = 1
holdconnectionopen = no
expunge = yes
`, dir, dir, port, user, password)
			p := filepath.Join(dir, "offlineimaprc")
			if err := os.WriteFile(p, []byte(rc), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"-c", p, "-o", "-u", "basic"}
		},
	},
}

// TestSyncClients runs each sync client through the interop scenario:
// first sync, changes on both sides, second sync (both sides agree), a
// sync without changes that downloads no message text.
func TestSyncClients(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			tool := requireTool(t, cl.tool)
			srv := startServer(t)
			dir := t.TempDir()
			root := filepath.Join(dir, "mail")
			if err := os.MkdirAll(root, 0o700); err != nil {
				t.Fatal(err)
			}
			args := cl.config(t, dir, srv.port)

			// 1. A new device: everything comes down.
			run(t, dir, tool, args...)
			checkAgree(t, "first sync", srv.serverState(), maildirState(t, root, cl.inbox), wantInitial)
			if n, _ := bodiesFetched(srv.env.Logs(), 0); n < 10 {
				t.Errorf("first sync: the trace shows %d message texts fetched, want all 10", n)
			}

			// 2. Changes on both sides, then a sync.
			srv.serverChanges()
			localChanges(t, root, cl.inbox)
			run(t, dir, tool, args...)
			checkAgree(t, "sync after changes", srv.serverState(), maildirState(t, root, cl.inbox), wantAfterChanges)
			if t.Failed() {
				return
			}

			// 3. Nothing changed: no message text is downloaded.
			mark := len(srv.env.Logs())
			run(t, dir, tool, args...)
			checkAgree(t, "sync without changes", srv.serverState(), maildirState(t, root, cl.inbox), wantAfterChanges)
			if n, fetches := bodiesFetched(srv.env.Logs(), mark); n != 0 || fetches == 0 {
				t.Errorf("sync without changes: %d message texts fetched in %d FETCH commands (want 0 texts; some FETCH of flags)", n, fetches)
			}
		})
	}
}
