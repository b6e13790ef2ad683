package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// ImportRequest says what postfach import brings in (docs/backup.md,
// "Importing mail").
type ImportRequest struct {
	Account string `json:"account"`
	// Path is an mbox file, a Maildir, or a folder tree of them (an
	// absolute path).
	Path string `json:"path"`
	// Mailbox receives the messages of an mbox file or of the top
	// Maildir, and the folders of a tree go below it; "" means INBOX
	// and folders at the top.
	Mailbox string `json:"mailbox,omitempty"`
	// MboxFormat is the mbox variant ("" is mboxrd).
	MboxFormat string `json:"mbox_format,omitempty"`
	// MaxSize bounds one message (0: none).
	MaxSize int64 `json:"max_size,omitempty"`
}

// ImportFolder reports one folder of an import.
type ImportFolder struct {
	Source  string `json:"source"`
	Mailbox string `json:"mailbox"`
	Added   int64  `json:"added"`
	Present int64  `json:"present"`
}

// ImportResult reports an import.
type ImportResult struct {
	Folders []ImportFolder `json:"folders,omitempty"`
	// Added counts the messages stored, Present those left out because
	// the mailbox has them (same Message-ID and body).
	Added   int64 `json:"added"`
	Present int64 `json:"present"`
	// Created are the mailboxes made.
	Created []string `json:"created,omitempty"`
	// Problems are what was left out, and why.
	Problems []string `json:"problems,omitempty"`
}

// importSource is one folder to import: an mbox file or a Maildir.
type importSource struct {
	path    string
	maildir bool
	levels  []string // the folder's name below the import's top
	empty   bool     // an empty mbox: the folder only
}

// importBatch bounds the messages of one Append.
const (
	importBatch      = 256
	importBatchBytes = 16 << 20
)

// ignoredFiles are files of mail programs found beside mbox files that
// hold no mail: Thunderbird's summaries (.msf) and settings.
var ignoredExt = map[string]bool{".msf": true, ".dat": true, ".json": true, ".html": true, ".htm": true, ".sqlite": true,
	".plist": true, ".mab": true, ".rdf": true, ".js": true, ".lock": true, ".index": true, ".toc": true, ".ibex": true}

// Import brings the mail at req.Path into the account: mbox files (in the
// variant req.MboxFormat), Maildirs and Maildir++ trees, and folder trees
// of them, Thunderbird's (.sbd) included, into the matching mailboxes,
// which are made as needed. Each message keeps its flags and its date
// (the From_ line's, or the file's time in a Maildir) and is stored as
// it is, line endings made CRLF, with no trace header added. Memory stays
// bounded whatever the size of a file. A message the mailbox has already
// (the same Message-ID and body) is left out, so importing twice adds
// nothing. Nothing of Path is read but regular files and directories
// (symbolic links are not followed).
func Import(ctx context.Context, st store.Store, req ImportRequest, progress func(done int64)) (*ImportResult, error) {
	format, err := ParseMboxFormat(req.MboxFormat)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !filepath.IsAbs(req.Path) {
		return nil, fmt.Errorf("import: %q is not an absolute path", req.Path)
	}
	top := ""
	if req.Mailbox != "" {
		if top, err = store.CanonicalMailboxName(req.Mailbox); err != nil {
			return nil, fmt.Errorf("import: mailbox %q: %w", req.Mailbox, err)
		}
	}
	acct, err := st.Account(ctx, req.Account)
	if err != nil {
		return nil, fmt.Errorf("import: account %s: %w", req.Account, err)
	}
	// The path itself may be a symbolic link (~/Mail to another disk);
	// nothing below it is followed.
	fi, err := os.Stat(req.Path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	res := &ImportResult{}
	var sources []importSource
	switch {
	case fi.Mode().IsRegular():
		sources = []importSource{{path: req.Path, empty: fi.Size() == 0}}
	case fi.IsDir():
		sources = findSources(req.Path, nil, res, 0)
	default:
		return nil, fmt.Errorf("import: %s is neither a file nor a directory", req.Path)
	}
	im := &importer{st: st, acct: acct.ID, res: res, format: format, maxSize: req.MaxSize, progress: progress}
	for _, src := range sources {
		name, err := importName(top, src.levels)
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: left out: %v", src.path, err))
			continue
		}
		if err := im.folder(ctx, src, name); err != nil {
			return res, fmt.Errorf("import %s: %w", src.path, err)
		}
	}
	return res, nil
}

// importName is the mailbox for a folder's levels below top: the top
// itself (INBOX when ""), else its levels below it. A tree's "Inbox" at
// the top is INBOX. The name is checked as IMAP's CREATE checks it.
func importName(top string, levels []string) (string, error) {
	if len(levels) == 0 {
		if top == "" {
			return "INBOX", nil
		}
		return top, nil
	}
	for _, l := range levels {
		if l == "" || strings.Contains(l, "/") {
			return "", fmt.Errorf("folder name %q: %w", strings.Join(levels, "/"), store.ErrInvalidName)
		}
	}
	name := strings.Join(levels, "/")
	if top == "" && len(levels) == 1 && strings.EqualFold(name, "inbox") {
		return "INBOX", nil
	}
	if top != "" {
		name = top + "/" + name
	}
	n, err := store.CanonicalMailboxName(name)
	if err != nil {
		return "", fmt.Errorf("folder name %q: %w", name, err)
	}
	return n, nil
}

// maxTreeDepth bounds how deep findSources goes.
const maxTreeDepth = 32

// findSources lists the folders of the tree at dir, whose name is levels.
func findSources(dir string, levels []string, res *ImportResult, depth int) []importSource {
	if depth > maxTreeDepth {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: left out: nested too deep", dir))
		return nil
	}
	var out []importSource
	md := isMaildir(dir)
	if md {
		out = append(out, importSource{path: dir, maildir: true, levels: levels})
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", dir, err))
		return out
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		t := e.Type()
		if t&os.ModeSymlink != 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: left out: a symbolic link", p))
			continue
		}
		if strings.HasPrefix(name, ".") {
			// Maildir++ folders of a Maildir; other hidden files are
			// not mail.
			if md && e.IsDir() && isMaildir(p) {
				if sub := maildirPPFolder(name); sub != nil {
					out = append(out, importSource{path: p, maildir: true, levels: append(append([]string(nil), levels...), sub...)})
				}
			}
			continue
		}
		if md && (name == "cur" || name == "new" || name == "tmp") {
			continue
		}
		switch {
		case e.IsDir():
			sub := unescapeName(name)
			if s, ok := strings.CutSuffix(name, ".sbd"); ok {
				// Thunderbird: the folders below the mbox file s.
				sub = unescapeName(s)
			} else if s, ok := strings.CutSuffix(name, ".mbox"); ok {
				// Apple Mail's export: a directory with an "mbox" file.
				if fi, err := os.Lstat(filepath.Join(p, "mbox")); err == nil && fi.Mode().IsRegular() {
					out = append(out, importSource{path: filepath.Join(p, "mbox"), levels: append(append([]string(nil), levels...), unescapeName(s)),
						empty: fi.Size() == 0})
					continue
				}
			}
			out = append(out, findSources(p, append(append([]string(nil), levels...), sub), res, depth+1)...)
		case t.IsRegular() && md:
			// A Maildir's own files: dovecot-keywords, dovecot-uidlist,
			// maildirfolder, subscriptions.
		case t.IsRegular():
			if ignoredExt[strings.ToLower(filepath.Ext(name))] {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", p, err))
				continue
			}
			if fi.Size() > 0 && !startsWithFrom(p) {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: left out: not an mbox file", p))
				continue
			}
			folder := strings.TrimSuffix(name, ".mbox")
			out = append(out, importSource{path: p, levels: append(append([]string(nil), levels...), unescapeName(folder)), empty: fi.Size() == 0})
		}
	}
	return out
}

func startsWithFrom(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [5]byte
	n, _ := io.ReadFull(f, b[:])
	return string(b[:n]) == "From "
}

// importer imports into one account.
type importer struct {
	st       store.Store
	acct     store.AccountID
	res      *ImportResult
	format   MboxFormat
	maxSize  int64
	progress func(done int64)
	done     int64

	mb *store.Mailbox
	// have indexes the messages of mb by Message-ID and size, with
	// their BlobIDs (hashed when a candidate needs it); seen holds the
	// Message-ID and hash of every message of mb known to be there.
	have  map[dedupKey][]string
	seen  map[dedupKey]bool
	batch []store.NewMessage
	bytes int64
	cur   *ImportFolder
	// popUID is the POP3 UIDL the next message keeps (MaildirUIDLFile).
	popUID string
}

// folder imports one source into the mailbox name.
func (im *importer) folder(ctx context.Context, src importSource, name string) error {
	mb, err := im.st.Mailbox(ctx, im.acct, name)
	if errors.Is(err, store.ErrNotFound) || err == nil && mb.NoSelect {
		mb, err = im.st.CreateMailboxWith(ctx, im.acct, name, store.CreateOptions{Parents: true, Subscribe: true})
		if err == nil {
			im.res.Created = append(im.res.Created, name)
		} else if errors.Is(err, store.ErrExists) {
			mb, err = im.st.Mailbox(ctx, im.acct, name)
		}
	}
	if err != nil {
		return fmt.Errorf("mailbox %q: %w", name, err)
	}
	if mb.NoSelect {
		return fmt.Errorf("mailbox %q cannot hold messages", name)
	}
	im.mb = mb
	im.res.Folders = append(im.res.Folders, ImportFolder{Source: src.path, Mailbox: name})
	im.cur = &im.res.Folders[len(im.res.Folders)-1]
	if err := im.index(ctx); err != nil {
		return err
	}
	defer im.discard()
	switch {
	case src.empty:
		return nil
	case src.maildir:
		err = im.maildir(ctx, src.path)
	default:
		err = im.mbox(ctx, src.path)
	}
	if err == nil {
		err = im.flush(ctx)
	}
	return err
}

// index reads what the mailbox holds, for leaving out what it has.
func (im *importer) index(ctx context.Context) error {
	im.have = map[dedupKey][]string{}
	im.seen = map[dedupKey]bool{}
	for m, err := range im.st.Messages(ctx, im.acct, im.mb.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{Summary: true}) {
		if err != nil {
			return err
		}
		k := haveKey(messageID(m.Summary), m.Size)
		im.have[k] = append(im.have[k], m.BlobID)
	}
	return nil
}

func messageID(s *message.Summary) string {
	if s == nil || s.Root.Envelope == nil {
		return ""
	}
	return s.Root.Envelope.MessageID
}

// dedupKey is a digest of what identifies a message for leaving it out:
// 16 bytes per message, whatever its Message-ID, so that the index of a
// mailbox of millions stays small.
type dedupKey [16]byte

func keyOf(parts ...string) dedupKey {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k dedupKey
	copy(k[:], h.Sum(nil))
	return k
}

func haveKey(msgid string, size int64) dedupKey {
	return keyOf("have", msgid, strconv.FormatInt(size, 10))
}

// add stages one message and queues it, unless the mailbox has it.
func (im *importer) add(ctx context.Context, r io.Reader, flags mail.Flags, date time.Time) error {
	body, err := im.st.Stage(ctx, message.NewCRLFReader(r), im.maxSize)
	if errors.Is(err, store.ErrTooBig) || errors.Is(err, store.ErrEmptyMessage) {
		im.res.Problems = append(im.res.Problems, fmt.Sprintf("%s: message %d left out: %v", im.cur.Source, im.cur.Added+im.cur.Present+1, err))
		return nil
	}
	if err != nil {
		return err
	}
	msgid := messageID(body.Summary())
	key := keyOf("seen", msgid, body.BlobID())
	if !im.seen[key] {
		// Candidates already in the mailbox: the same Message-ID and
		// size; hash their bodies once.
		hk := haveKey(msgid, body.Size())
		for _, id := range im.have[hk] {
			h, err := hashBody(ctx, im.st, id)
			if err != nil {
				body.Discard()
				return err
			}
			im.seen[keyOf("seen", msgid, h)] = true
		}
		delete(im.have, hk)
	}
	if im.seen[key] {
		body.Discard()
		im.cur.Present++
		im.res.Present++
		return nil
	}
	im.seen[key] = true
	if date.IsZero() {
		if s := body.Summary(); s != nil && !s.Date.IsZero() {
			date = s.Date
		}
	}
	im.batch = append(im.batch, store.NewMessage{Body: body, Flags: flags, InternalDate: date, POPUID: im.popUID})
	im.bytes += body.Size()
	if len(im.batch) >= importBatch || im.bytes >= importBatchBytes {
		return im.flush(ctx)
	}
	return nil
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	_, err := im.st.Append(ctx, im.acct, im.mb.ID, im.batch)
	n := int64(len(im.batch))
	im.discard()
	if err != nil {
		return fmt.Errorf("store into %q: %w", im.mb.Name, err)
	}
	im.cur.Added += n
	im.res.Added += n
	im.done += n
	if im.progress != nil {
		im.progress(im.done)
	}
	return nil
}

func (im *importer) discard() {
	for _, m := range im.batch {
		m.Body.Discard()
	}
	im.batch = im.batch[:0]
	im.bytes = 0
}

// mbox imports the messages of an mbox file.
func (im *importer) mbox(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	mr := newMboxReader(f, im.format)
	for {
		m, err := mr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errNotMbox) {
			im.res.Problems = append(im.res.Problems, fmt.Sprintf("%s: left out: %v", path, err))
			return nil
		}
		if err != nil {
			return err
		}
		hdr, flags, expunged := mboxHeaderFlags(m.Header, im.format == MboxCL2)
		if !m.Complete {
			hdr, flags = m.Header, nil
		}
		if expunged {
			io.Copy(io.Discard, m.Body)
			continue
		}
		date := m.Date
		if err := im.add(ctx, io.MultiReader(bytes.NewReader(hdr), m.Body), flags, date); err != nil {
			return err
		}
	}
	for _, p := range mr.Problems {
		im.res.Problems = append(im.res.Problems, path+": "+p)
	}
	return nil
}

// maildir imports the messages of a Maildir.
func (im *importer) maildir(ctx context.Context, dir string) error {
	files, err := maildirFiles(dir)
	if err != nil {
		return err
	}
	kw := maildirKeywords(dir)
	uidls := maildirUIDLs(dir)
	for _, mf := range files {
		f, err := os.Open(mf.path)
		if err != nil {
			// Gone meanwhile (a client moved it from new/ to cur/).
			im.res.Problems = append(im.res.Problems, fmt.Sprintf("%s: %v", mf.path, err))
			continue
		}
		var date time.Time
		if fi, err := f.Stat(); err == nil {
			date = fi.ModTime()
		}
		var flags mail.Flags
		if !mf.new {
			flags = maildirFlags(mf.info, kw)
		}
		im.popUID = uidls[filepath.Base(mf.path)]
		err = im.add(ctx, f, flags, date)
		im.popUID = ""
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
