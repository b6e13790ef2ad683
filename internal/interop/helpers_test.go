package interop

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

const (
	user     = "alice@" + testenv.Domain
	password = "interop secret 42"
	// clientTimeout bounds one run of a sync client.
	clientTimeout = 60 * time.Second
)

// requireTool finds an outside program on PATH; with
// POSTFACH_REQUIRE_TOOLS=1 (CI) a missing one fails the test.
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

// run runs a client with a timeout and fails the test with its output
// when it fails.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v:\n%s", name, clientTimeout, out)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// server is the whole postfach server with one populated account.
type server struct {
	t    *testing.T
	env  *testenv.Env
	acct store.AccountID
	port string
}

// startServer starts postfach and fills the account: INBOX, Sent, Drafts,
// a nested Archive/2023, and the other default folders, empty.
func startServer(t *testing.T) *server {
	t.Helper()
	e := testenv.Start(t, testenv.Options{})
	a := e.AddUser(user, password)
	s := &server{t: t, env: e, acct: a.ID}
	_, s.port, _ = strings.Cut(e.Addr("imap"), "127.0.0.1:")
	if _, err := e.Store().CreateMailbox(context.Background(), a.ID, "Archive/2023", nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		mailbox, subject string
		flags            []string
	}{
		{"INBOX", "m1", nil},
		{"INBOX", "m2", []string{mail.FlagSeen}},
		{"INBOX", "m3", nil},
		{"INBOX", "m4", []string{mail.FlagSeen}},
		{"INBOX", "m5", []string{mail.FlagSeen, mail.FlagAnswered}},
		{"Sent", "s1", []string{mail.FlagSeen}},
		{"Sent", "s2", []string{mail.FlagSeen}},
		{"Drafts", "d1", []string{mail.FlagDraft, mail.FlagSeen}},
		{"Archive/2023", "a1", []string{mail.FlagSeen}},
		{"Archive/2023", "a2", []string{mail.FlagSeen, mail.FlagFlagged}},
	} {
		s.deliver(m.mailbox, m.subject, m.flags...)
	}
	return s
}

// message returns a small message with a unique Subject.
func message(subject string) string {
	return fmt.Sprintf("From: Bob <bob@example.net>\r\nTo: Alice <%s>\r\nSubject: %s\r\nDate: Fri, 1 Mar 2024 10:00:00 +0000\r\nMessage-ID: <%s@example.net>\r\n\r\nThis is %s.\r\n%s\r\n",
		user, subject, subject, subject, strings.Repeat("Some text to fetch. ", 20))
}

// deliver appends a message to a mailbox through the store.
func (s *server) deliver(mailbox, subject string, flags ...string) {
	s.t.Helper()
	ctx := context.Background()
	st := s.env.Store()
	mb, err := st.Mailbox(ctx, s.acct, mailbox)
	if err != nil {
		s.t.Fatal(err)
	}
	staged, err := st.Stage(ctx, strings.NewReader(message(subject)), 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer staged.Discard()
	if _, err := st.Append(ctx, s.acct, mb.ID, []store.NewMessage{{Body: staged, Flags: mail.NewFlags(flags...)}}); err != nil {
		s.t.Fatal(err)
	}
}

// state is a mailbox tree as "folder" -> "subject" -> system flags as
// Maildir letters (sorted), so both sides compare directly.
type state map[string]map[string]string

func (st state) String() string {
	var folders []string
	for f := range st {
		folders = append(folders, f)
	}
	slices.Sort(folders)
	var b strings.Builder
	for _, f := range folders {
		var subs []string
		for s, fl := range st[f] {
			subs = append(subs, s+":"+fl)
		}
		slices.Sort(subs)
		fmt.Fprintf(&b, "  %s: %s\n", f, strings.Join(subs, " "))
	}
	return b.String()
}

// flagLetters maps IMAP system flags to Maildir info letters (the
// Maildir specification's "2," section: D, F, R, S, T; P, "passed", has
// no IMAP system flag).
var flagLetters = map[string]byte{
	mail.FlagDraft: 'D', mail.FlagFlagged: 'F', mail.FlagAnswered: 'R', mail.FlagSeen: 'S', mail.FlagDeleted: 'T',
}

// serverState reads the account from the store.
func (s *server) serverState() state {
	s.t.Helper()
	ctx := context.Background()
	st := s.env.Store()
	mbs, err := st.Mailboxes(ctx, s.acct)
	if err != nil {
		s.t.Fatal(err)
	}
	out := state{}
	for _, mb := range mbs {
		if mb.NoSelect {
			continue
		}
		out[mb.Name] = map[string]string{}
		uids, _, err := st.UIDs(ctx, s.acct, mb.ID)
		if err != nil {
			s.t.Fatal(err)
		}
		for m, err := range st.Messages(ctx, s.acct, mb.ID, uids, store.ListOptions{Summary: true}) {
			if err != nil {
				s.t.Fatal(err)
			}
			var letters []byte
			for _, f := range m.Flags {
				if l, ok := flagLetters[f]; ok {
					letters = append(letters, l)
				}
			}
			slices.Sort(letters)
			out[mb.Name][m.Summary.Root.Envelope.Subject] = string(letters)
		}
	}
	return out
}

// maildirState reads a Maildir tree: every folder with a cur directory;
// inbox names the directory that holds INBOX (relative to root).
func maildirState(t *testing.T, root, inbox string) state {
	t.Helper()
	out := state{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() != "cur" {
			return nil
		}
		dir := filepath.Dir(p)
		rel, _ := filepath.Rel(root, dir)
		name := filepath.ToSlash(rel)
		if name == inbox {
			name = "INBOX"
		}
		out[name] = map[string]string{}
		for _, sub := range []string{"cur", "new"} {
			ents, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil {
				return err
			}
			for _, ent := range ents {
				subject, err := subjectOf(filepath.Join(dir, sub, ent.Name()))
				if err != nil {
					return err
				}
				letters := []byte{}
				if _, info, ok := strings.Cut(ent.Name(), ":2,"); ok {
					for i := 0; i < len(info); i++ {
						if strings.IndexByte("DFRST", info[i]) >= 0 {
							letters = append(letters, info[i])
						}
					}
				}
				slices.Sort(letters)
				out[name][subject] = string(letters)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// subjectOf reads the Subject of a message file.
func subjectOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			break
		}
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no Subject", path)
}

// findFile returns the path of the message with a subject in a Maildir
// folder.
func findFile(t *testing.T, folderDir, subject string) string {
	t.Helper()
	for _, sub := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(folderDir, sub))
		for _, ent := range ents {
			p := filepath.Join(folderDir, sub, ent.Name())
			if s, err := subjectOf(p); err == nil && s == subject {
				return p
			}
		}
	}
	t.Fatalf("no message %q in %s", subject, folderDir)
	return ""
}

// uniqueName returns a new Maildir file name (time.random.host) with the
// given info letters, as a mail reader gives a message it moves or
// creates.
func uniqueName(letters string) string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatInt(time.Now().Unix(), 10) + "." + hex.EncodeToString(b[:]) + ".interop:2," + letters
}

// setLetters renames a Maildir file to have these info letters (moving it
// from new to cur, as a reader does).
func setLetters(t *testing.T, path, letters string) {
	t.Helper()
	base, _, _ := strings.Cut(filepath.Base(path), ":2,")
	dir := filepath.Dir(filepath.Dir(path))
	if err := os.Rename(path, filepath.Join(dir, "cur", base+":2,"+letters)); err != nil {
		t.Fatal(err)
	}
}

// letters returns the info letters of a Maildir file name.
func letters(path string) string {
	_, info, _ := strings.Cut(filepath.Base(path), ":2,")
	return info
}

// serverChanges are the changes made on the server between the first and
// the second sync, through go-imap v2's client: \Seen on m1, \Flagged on
// m2, m3 moved to Archive/2023, m4 deleted, and a new message in INBOX.
func (s *server) serverChanges() {
	t := s.t
	t.Helper()
	c, err := imapclient.DialInsecure("127.0.0.1:"+s.port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uid := func(subject string) imap.UIDSet {
		data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subject}}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		uids := data.AllUIDs()
		if len(uids) != 1 {
			t.Fatalf("search %s: %v", subject, uids)
		}
		return imap.UIDSetNum(uids[0])
	}
	store := func(subject string, flag imap.Flag) {
		if err := c.Store(uid(subject), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	store("m1", imap.FlagSeen)
	store("m2", imap.FlagFlagged)
	if _, err := c.Move(uid("m3"), "Archive/2023").Wait(); err != nil {
		t.Fatal(err)
	}
	u4 := uid("m4")
	store("m4", imap.FlagDeleted)
	if err := c.UIDExpunge(u4).Close(); err != nil {
		t.Fatal(err)
	}
	msg := message("new-server")
	ap := c.Append("INBOX", int64(len(msg)), nil)
	ap.Write([]byte(msg))
	ap.Close()
	if _, err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// localChanges are the changes made in the Maildir between the first and
// the second sync, as a mail reader makes them: m5 flagged, s1 marked
// answered, s2 moved from Sent to Archive/2023 (a new file name), d1
// deleted, and a new message in INBOX.
func localChanges(t *testing.T, root, inboxDir string) {
	t.Helper()
	inbox := filepath.Join(root, inboxDir)
	p := findFile(t, inbox, "m5")
	setLetters(t, p, "FRS")
	sent := filepath.Join(root, "Sent")
	p = findFile(t, sent, "s1")
	setLetters(t, p, "RS")
	p = findFile(t, sent, "s2")
	if err := os.Rename(p, filepath.Join(root, "Archive", "2023", "cur", uniqueName(letters(p)))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(findFile(t, filepath.Join(root, "Drafts"), "d1")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inbox, "new", strings.TrimSuffix(uniqueName(""), ":2,")), []byte(message("new-local")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantAfterChanges is the account after both sides' changes are synced.
var wantAfterChanges = state{
	"INBOX":        {"m1": "S", "m2": "FS", "m5": "FRS", "new-server": "", "new-local": ""},
	"Sent":         {"s1": "RS"},
	"Drafts":       {},
	"Archive":      {},
	"Archive/2023": {"a1": "S", "a2": "FS", "m3": "", "s2": "S"},
	"Trash":        {},
	"Junk":         {},
}

// checkAgree fails unless the server and the Maildir hold what want says.
func checkAgree(t *testing.T, what string, srv, local, want state) {
	t.Helper()
	if srv.String() != want.String() {
		t.Errorf("%s: server has\n%swant\n%s", what, srv, want)
	}
	if local.String() != want.String() {
		t.Errorf("%s: Maildir has\n%swant\n%s", what, local, want)
	}
}

// fetchTrace matches the server's protocol trace of a FETCH.
var fetchTrace = regexp.MustCompile(`msg="imap fetch" .*bodies=(\d+)`)

// bodiesFetched counts the message texts the server sent in the log
// after offset.
func bodiesFetched(logs string, offset int) (n, fetches int) {
	for _, m := range fetchTrace.FindAllStringSubmatch(logs[offset:], -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
		fetches++
	}
	return n, fetches
}
