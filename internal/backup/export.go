package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// ExportRequest says what postfach export writes.
type ExportRequest struct {
	Account string `json:"account"`
	// Dest is the directory to write (an absolute path): it must not
	// exist or be empty.
	Dest string `json:"dest"`
	// Format is "mbox" (a tree of mboxrd files as Thunderbird lays them
	// out) or "maildir" (Maildir++).
	Format string `json:"format"`
}

// ExportResult reports an export.
type ExportResult struct {
	Mailboxes int64 `json:"mailboxes"`
	Messages  int64 `json:"messages"`
	Bytes     int64 `json:"bytes"`
	// Problems are what could not be written as it is (a keyword past
	// the 26 a Maildir can name).
	Problems []string `json:"problems,omitempty"`
}

// Export writes every mailbox of the account into req.Dest, with flags,
// keywords and internal dates, so that Import reads it back to the same
// messages: as mbox, one mboxrd file per mailbox named for it ("INBOX",
// "Work", and "Work.sbd/2024" below it, as Thunderbird keeps them), the
// flags in Status, X-Status and X-Keywords; as Maildir++, INBOX at the
// top and ".Work.2024" for the others, the flags in the file names and
// dovecot-keywords, each file's time its internal date. Lines end in LF,
// as mail programs on Unix expect. Files are created 0600 and
// directories 0700. Mailbox names become file names only escaped (see
// escapeName): no name reaches outside Dest.
func Export(ctx context.Context, st store.Store, req ExportRequest) (*ExportResult, error) {
	if req.Format != "mbox" && req.Format != "maildir" {
		return nil, fmt.Errorf("export: unknown format %q (want mbox or maildir)", req.Format)
	}
	if !filepath.IsAbs(req.Dest) {
		return nil, fmt.Errorf("export: %q is not an absolute path", req.Dest)
	}
	acct, err := st.Account(ctx, req.Account)
	if err != nil {
		return nil, fmt.Errorf("export: account %s: %w", req.Account, err)
	}
	if ents, err := os.ReadDir(req.Dest); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("export: %s is not empty", req.Dest)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.MkdirAll(req.Dest, 0o700); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	mbs, err := st.Mailboxes(ctx, acct.ID)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	sort.Slice(mbs, func(i, j int) bool { return mbs[i].Name < mbs[j].Name })
	res := &ExportResult{}
	for _, mb := range mbs {
		if mb.NoSelect {
			continue
		}
		var err error
		if req.Format == "mbox" {
			err = exportMbox(ctx, st, acct.ID, &mb, req.Dest, res)
		} else {
			err = exportMaildir(ctx, st, acct.ID, &mb, req.Dest, res)
		}
		if err != nil {
			return res, fmt.Errorf("export mailbox %q: %w", mb.Name, err)
		}
		res.Mailboxes++
	}
	return res, nil
}

// exportMbox writes one mailbox as an mboxrd file.
func exportMbox(ctx context.Context, st store.Store, acct store.AccountID, mb *store.Mailbox, dest string, res *ExportResult) error {
	levels := strings.Split(mb.Name, "/")
	dir := dest
	for _, l := range levels[:len(levels)-1] {
		dir = filepath.Join(dir, escapeName(l, false)+".sbd")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, escapeName(levels[len(levels)-1], false)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	err = eachBody(ctx, st, acct, mb, func(m *store.Message, body *bufio.Reader) error {
		if err := writeMboxMessage(w, m.InternalDate, m.Flags, body); err != nil {
			return err
		}
		res.Messages++
		res.Bytes += m.Size
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeMboxMessage writes one message as mboxrd: the From_ line, the
// flags' fields, the message with LF line endings and one more ">" before
// every line matching ^>*From , and the blank line that ends it.
func writeMboxMessage(w *bufio.Writer, date time.Time, flags mail.Flags, body *bufio.Reader) error {
	fmt.Fprintf(w, "From MAILER-DAEMON %s\n", date.UTC().Format("Mon Jan _2 15:04:05 2006"))
	w.Write(mboxStatusFields(flags))
	last := byte('\n')
	for {
		line, err := body.ReadSlice('\n')
		if len(line) > 0 {
			if last == '\n' {
				i := 0
				for i < len(line) && line[i] == '>' {
					i++
				}
				if bytes.HasPrefix(line[i:], []byte("From ")) {
					w.WriteByte('>')
				}
			}
			last = line[len(line)-1]
			if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
				w.Write(line[:n-2])
				w.WriteByte('\n')
			} else {
				w.Write(line)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
	if last != '\n' {
		w.WriteByte('\n')
	}
	return w.WriteByte('\n')
}

// eachBody calls fn with each message of the mailbox and its body.
func eachBody(ctx context.Context, st store.Store, acct store.AccountID, mb *store.Mailbox, fn func(m *store.Message, body *bufio.Reader) error) error {
	br := bufio.NewReaderSize(nil, 64<<10)
	for m, err := range st.Messages(ctx, acct, mb.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			return err
		}
		b, err := st.OpenBody(ctx, m.BlobID)
		if err != nil {
			return fmt.Errorf("message UID %d: %w", m.UID, err)
		}
		br.Reset(io.NewSectionReader(b, 0, b.Size()))
		err = fn(m, br)
		b.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// exportMaildir writes one mailbox as a Maildir++ folder.
func exportMaildir(ctx context.Context, st store.Store, acct store.AccountID, mb *store.Mailbox, dest string, res *ExportResult) error {
	dir := dest
	if !store.IsInbox(mb.Name) {
		var parts []string
		for _, l := range strings.Split(mb.Name, "/") {
			parts = append(parts, escapeName(imap.EncodeMUTF7(l), true))
		}
		dir = filepath.Join(dest, "."+strings.Join(parts, "."))
	}
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil && !(sub == "" && errors.Is(err, os.ErrExist)) {
			return err
		}
	}
	if dir != dest {
		if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
			return err
		}
	}
	letters := map[string]byte{}
	var kwOrder []string
	err := eachBody(ctx, st, acct, mb, func(m *store.Message, body *bufio.Reader) error {
		info := ""
		var kws []byte
		for _, f := range m.Flags {
			switch f {
			case mail.FlagDraft:
				info += "D"
			case mail.FlagFlagged:
				info += "F"
			case mail.FlagAnswered:
				info += "R"
			case mail.FlagSeen:
				info += "S"
			case mail.FlagDeleted:
				info += "T"
			default:
				if strings.HasPrefix(f, `\`) {
					continue
				}
				c, ok := letters[f]
				if !ok {
					if len(kwOrder) == 26 {
						res.Problems = append(res.Problems, fmt.Sprintf("%s UID %d: keyword %s left out (a Maildir names 26)", mb.Name, m.UID, f))
						continue
					}
					c = byte('a' + len(kwOrder))
					letters[f] = c
					kwOrder = append(kwOrder, f)
				}
				kws = append(kws, c)
			}
		}
		sort.Slice(kws, func(i, j int) bool { return kws[i] < kws[j] })
		info = sortString(info) + string(kws)
		name := fmt.Sprintf("%d.M%dP%d.postfach,S=%d:2,%s", m.InternalDate.Unix(), m.UID, mb.UIDValidity, m.Size, info)
		tmp := filepath.Join(dir, "tmp", name)
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 64<<10)
		for {
			line, err := body.ReadSlice('\n')
			if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
				w.Write(line[:n-2])
				w.WriteByte('\n')
			} else {
				w.Write(line)
			}
			if err == io.EOF {
				break
			}
			if err != nil && err != bufio.ErrBufferFull {
				f.Close()
				return err
			}
		}
		err = w.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chtimes(tmp, m.InternalDate, m.InternalDate)
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, "cur", name))
		}
		if err != nil {
			return err
		}
		res.Messages++
		res.Bytes += m.Size
		return nil
	})
	if err != nil {
		return err
	}
	if len(kwOrder) > 0 {
		var b strings.Builder
		for i, k := range kwOrder {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
		return os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte(b.String()), 0o600)
	}
	return nil
}

func sortString(s string) string {
	b := []byte(s)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return string(b)
}
