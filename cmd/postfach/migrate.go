package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/term"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/backup"
	"github.com/postfach/postfach/internal/mail"
)

// postfach migrate (docs/backup.md, "Moving an account from another
// server"): the messages of another server's account are fetched in
// chunks into a private Maildir in the temporary directory, each chunk
// is imported (postfach import: flags, dates, no trace headers, nothing
// twice), and what was done is recorded in a state file, so that a run
// that was interrupted goes on where it stopped and a later run copies
// only what is new.

func migrateFlags(fs *flag.FlagSet) {
	fs.String("from", "", "the source: imaps://USER@HOST[:PORT], imap://USER@HOST[:PORT] (STARTTLS) or pop3s://USER@HOST[:PORT]")
	fs.Bool("password-stdin", false, "read the source's password from the first line of standard input")
	fs.String("ca", "", "PEM file of the certificate authorities to check the source's certificate against (default: the system's)")
	fs.String("state", "", "the file that records what was copied (default: in the user's cache directory, named for ADDRESS and the source)")
}

// migrateChunk is how many messages are fetched before they are imported
// and the state saved.
const migrateChunk = 200

// migrateState is what a migration has copied.
type migrateState struct {
	// Folders: per source folder, its UIDVALIDITY and the highest UID
	// copied.
	Folders map[string]migrateFolder `json:"folders,omitempty"`
	// UIDLs are the POP3 messages copied.
	UIDLs map[string]bool `json:"uidls,omitempty"`
}

type migrateFolder struct {
	UIDValidity uint32 `json:"uidvalidity"`
	Last        uint32 `json:"last"`
}

func cmdMigrate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if !oneAddress(e, fs, args, 1) {
		return exitUsage
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	u, err := url.Parse(get("from"))
	if err != nil || u.User == nil || u.User.Username() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		fmt.Fprintf(e.stderr, "%s: want --from imaps://USER@HOST[:PORT], imap://USER@HOST[:PORT] or pop3s://USER@HOST[:PORT]\n", fs.Name())
		return exitUsage
	}
	ports := map[string]string{"imaps": "993", "imap": "143", "pop3s": "995"}
	if ports[u.Scheme] == "" {
		fmt.Fprintf(e.stderr, "%s: unknown scheme %q (want imaps, imap or pop3s)\n", fs.Name(), u.Scheme)
		return exitUsage
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), ports[u.Scheme])
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if ca := get("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: --ca: %v\n", fs.Name(), err)
			return exitUsage
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(e.stderr, "%s: --ca %s holds no PEM certificate\n", fs.Name(), ca)
			return exitUsage
		}
	}
	password, err := sourcePassword(e, fs, u)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	statePath := get("state")
	if statePath == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		sum := sha256.Sum256([]byte(strings.ToLower(args[0]) + "\x00" + u.Scheme + "://" + u.User.Username() + "@" + addr))
		statePath = filepath.Join(dir, "postfach", "migrate-"+hex.EncodeToString(sum[:8])+".json")
	}
	cfg, ok := configOrReport(e, fs)
	if !ok {
		return exConfig
	}
	st := &migrateState{Folders: map[string]migrateFolder{}, UIDLs: map[string]bool{}}
	if data, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(data, st); err != nil {
			fmt.Fprintf(e.stderr, "postfach migrate: state file %s: %v\n", statePath, err)
			return exitError
		}
		if st.Folders == nil {
			st.Folders = map[string]migrateFolder{}
		}
		if st.UIDLs == nil {
			st.UIDLs = map[string]bool{}
		}
	}
	return withAPI(e, cfg, func(api admin.API) int {
		m := &migrator{ctx: ctx, e: e, api: api, account: args[0], state: st, statePath: statePath,
			maxSize: int64(cfg.MaxMessageSize)}
		if fi, err := os.Stat(cfg.DataDir); err == nil && os.Geteuid() == 0 {
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
				m.owner = []int{int(sys.Uid), int(sys.Gid)}
			}
		}
		var err error
		if u.Scheme == "pop3s" {
			err = m.pop3(addr, tc, u.User.Username(), password)
		} else {
			err = m.imap(addr, tc, u.Scheme == "imap", u.User.Username(), password)
		}
		fmt.Fprintln(e.stderr)
		if err != nil {
			fmt.Fprintln(e.stderr, "postfach migrate:", err)
			fmt.Fprintf(e.stderr, "postfach migrate: %d messages copied so far; run the command again to go on\n", m.copied)
			return exitError
		}
		fmt.Fprintf(e.stdout, "migrated %d new messages into %s (%d there already); state in %s\n", m.copied, args[0], m.present, statePath)
		return exitOK
	})
}

// sourcePassword reads the source's password: the first line of stdin,
// or a prompt.
func sourcePassword(e *env, fs *flag.FlagSet, u *url.URL) (string, error) {
	if pw, ok := u.User.Password(); ok {
		_ = pw
		return "", errors.New("put no password in the URL (it would show in the process list): use the prompt or --password-stdin")
	}
	if fs.Lookup("password-stdin").Value.String() == "true" {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		if pw := strings.TrimRight(line, "\r\n"); pw != "" {
			return pw, nil
		}
		return "", errors.New("empty password on stdin")
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: use --password-stdin")
	}
	fmt.Fprintf(e.stderr, "Password of %s at %s: ", u.User.Username(), u.Host)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil || len(pw) == 0 {
		return "", errors.New("no password")
	}
	return string(pw), nil
}

// migrator copies one account.
type migrator struct {
	ctx       context.Context
	e         *env
	api       admin.API
	account   string
	state     *migrateState
	statePath string
	maxSize   int64
	// owner is the uid and gid chunks are given (nil: leave them).
	owner   []int
	copied  int64
	present int64
}

// stagedMsg is a fetched message.
type stagedMsg struct {
	body  []byte
	flags []string
	date  time.Time
	uidl  string
}

// chunk is a Maildir in the temporary directory that fetched messages
// are written to as they arrive (memory holds one message at a time),
// and that is then imported.
type chunk struct {
	dir     string
	letters map[string]byte
	kw      strings.Builder
	uidls   strings.Builder
	n       int
}

func newChunk() (*chunk, error) {
	dir, err := os.MkdirTemp("", "postfach-migrate-*")
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return &chunk{dir: dir, letters: map[string]byte{}}, nil
}

// add writes one message, its flags in its name (Maildir's letters and
// Dovecot's keyword letters, which import reads).
func (ch *chunk) add(msg stagedMsg) error {
	info := ""
	for _, f := range msg.flags {
		switch strings.ToLower(f) {
		case `\seen`:
			info += "S"
		case `\answered`:
			info += "R"
		case `\flagged`:
			info += "F"
		case `\draft`:
			info += "D"
		case `\deleted`:
			info += "T"
		default:
			if strings.HasPrefix(f, `\`) || !mail.ValidKeyword(f) {
				continue
			}
			c, ok := ch.letters[f]
			if !ok {
				if len(ch.letters) == 26 {
					continue
				}
				c = byte('a' + len(ch.letters))
				fmt.Fprintf(&ch.kw, "%d %s\n", len(ch.letters), f)
				ch.letters[f] = c
			}
			info += string(c)
		}
	}
	b := []byte(info)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	name := fmt.Sprintf("%010d.%06d.migrate:2,%s", msg.date.Unix(), ch.n, b)
	ch.n++
	p := filepath.Join(ch.dir, "cur", name)
	if err := os.WriteFile(p, msg.body, 0o600); err != nil {
		return err
	}
	if err := os.Chtimes(p, msg.date, msg.date); err != nil {
		return err
	}
	if msg.uidl != "" {
		fmt.Fprintf(&ch.uidls, "%s %s\n", name, msg.uidl)
	}
	return nil
}

// importChunk imports the chunk into the mailbox, removes it, and then
// records the state with done.
func (m *migrator) importChunk(mailbox string, ch *chunk, done func()) error {
	defer os.RemoveAll(ch.dir)
	if ch.kw.Len() > 0 {
		if err := os.WriteFile(filepath.Join(ch.dir, "dovecot-keywords"), []byte(ch.kw.String()), 0o600); err != nil {
			return err
		}
	}
	if ch.uidls.Len() > 0 {
		if err := os.WriteFile(filepath.Join(ch.dir, backup.MaildirUIDLFile), []byte(ch.uidls.String()), 0o600); err != nil {
			return err
		}
	}
	// The server reads the chunk: when root runs the command for a
	// server that runs as another user, the chunk becomes that user's
	// (the owner of the data directory).
	if m.owner != nil {
		err := filepath.Walk(ch.dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, m.owner[0], m.owner[1])
		})
		if err != nil {
			return err
		}
	}
	res, err := m.api.Import(m.ctx, backup.ImportRequest{Account: m.account, Path: ch.dir, Mailbox: mailbox, MaxSize: m.maxSize})
	if err != nil {
		return fmt.Errorf("import into %s: %w", mailbox, err)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(m.e.stderr, "\npostfach migrate: %s: %s", mailbox, strings.ReplaceAll(p, ch.dir, "(chunk)"))
	}
	m.copied += res.Added
	m.present += res.Present
	done()
	return m.saveState()
}

func (m *migrator) saveState() error {
	data, err := json.Marshal(m.state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.statePath), 0o700); err != nil {
		return err
	}
	tmp := m.statePath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.statePath)
}

// imap copies every folder of an IMAP account.
func (m *migrator) imap(addr string, tc *tls.Config, starttls bool, user, password string) error {
	opts := &imapclient.Options{TLSConfig: tc}
	var c *imapclient.Client
	var err error
	if starttls {
		c, err = imapclient.DialStartTLS(addr, opts)
	} else {
		c, err = imapclient.DialTLS(addr, opts)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return fmt.Errorf("log in at %s: %w", addr, err)
	}
	folders, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("list folders: %w", err)
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Mailbox < folders[j].Mailbox })
	for _, f := range folders {
		skip := false
		for _, a := range f.Attrs {
			if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
				skip = true
			}
		}
		if skip {
			continue
		}
		target := f.Mailbox
		if strings.EqualFold(target, "INBOX") {
			target = "INBOX"
		} else if f.Delim != 0 && f.Delim != '/' {
			if strings.Contains(target, "/") {
				fmt.Fprintf(m.e.stderr, "\npostfach migrate: folder %q left out: its name holds \"/\"", f.Mailbox)
				continue
			}
			target = strings.ReplaceAll(target, string(f.Delim), "/")
		}
		if err := m.imapFolder(c, f.Mailbox, target); err != nil {
			return fmt.Errorf("folder %s: %w", f.Mailbox, err)
		}
	}
	return c.Logout().Wait()
}

func (m *migrator) imapFolder(c *imapclient.Client, name, target string) error {
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return err
	}
	fs := m.state.Folders[name]
	if fs.UIDValidity != sel.UIDValidity {
		// New, or its UIDs were renumbered: from the start (import
		// leaves out what is there).
		fs = migrateFolder{UIDValidity: sel.UIDValidity}
	}
	if sel.NumMessages == 0 {
		// Made all the same (import makes the mailbox).
		ch, err := newChunk()
		if err != nil {
			return err
		}
		return m.importChunk(target, ch, func() { m.state.Folders[name] = fs })
	}
	uids, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(fs.Last + 1), Stop: 0}}}}, nil).Wait()
	if err != nil {
		return err
	}
	var todo []imap.UID
	for _, u := range uids.AllUIDs() {
		if uint32(u) > fs.Last {
			todo = append(todo, u)
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i] < todo[j] })
	for start := 0; start < len(todo) || start == 0; start += migrateChunk {
		end := min(start+migrateChunk, len(todo))
		ch, err := newChunk()
		if err != nil {
			return err
		}
		last := fs.Last
		if end > start {
			section := &imap.FetchItemBodySection{Peek: true}
			cmd := c.Fetch(imap.UIDSetNum(todo[start:end]...), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true,
				BodySection: []*imap.FetchItemBodySection{section}})
			for {
				md := cmd.Next()
				if md == nil {
					break
				}
				buf, err := md.Collect()
				if err != nil {
					cmd.Close()
					os.RemoveAll(ch.dir)
					return err
				}
				var flags []string
				for _, f := range buf.Flags {
					flags = append(flags, string(f))
				}
				if err := ch.add(stagedMsg{body: buf.FindBodySection(section), flags: flags, date: buf.InternalDate}); err != nil {
					cmd.Close()
					os.RemoveAll(ch.dir)
					return err
				}
				last = max(last, uint32(buf.UID))
			}
			if err := cmd.Close(); err != nil {
				os.RemoveAll(ch.dir)
				return err
			}
		}
		fmt.Fprintf(m.e.stderr, "\r%s: %d/%d", target, end, len(todo))
		if err := m.importChunk(target, ch, func() {
			fs.Last = last
			m.state.Folders[name] = fs
		}); err != nil {
			return err
		}
		if end >= len(todo) {
			break
		}
	}
	return nil
}
