package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Selection says what a partial restore brings back: the messages of one
// account, of one of its mailboxes, or some UIDs (as the backup knew
// them) of that mailbox.
type Selection struct {
	Account string   `json:"account"`
	Mailbox string   `json:"mailbox,omitempty"`
	UIDs    []string `json:"uids,omitempty"` // UID sets, "1:4,9"
}

// PartialResult reports a partial restore.
type PartialResult struct {
	Backup string `json:"backup"`
	// Created are the mailboxes made again because they no longer
	// existed.
	Created []string `json:"created,omitempty"`
	// Restored counts the messages added; Present those left out because
	// the mailbox has them (the same body).
	Restored int64 `json:"restored"`
	Present  int64 `json:"present"`
}

// RestorePartial adds to st, which may be in use, what the selection
// names from the backup at path. It only adds: a message comes back with
// a new UID (devices see it as new) and its flags and internal date, a
// mailbox that no longer exists is created again, and nothing present is
// changed; a message whose mailbox already holds its body is left out, so
// running it twice adds nothing. The account must exist.
func RestorePartial(ctx context.Context, st store.Store, path string, sel Selection) (*PartialResult, error) {
	var uids mail.UIDSet
	for _, s := range sel.UIDs {
		set, err := mail.ParseUIDSet(s)
		if err != nil || set.IsEmpty() {
			return nil, fmt.Errorf("restore: bad UID set %q", s)
		}
		uids = uids.Union(set)
	}
	if uids != nil && sel.Mailbox == "" {
		return nil, errors.New("restore: UIDs need a mailbox (--mailbox)")
	}
	want := ""
	if sel.Mailbox != "" {
		n, err := store.CanonicalMailboxName(sel.Mailbox)
		if err != nil {
			return nil, fmt.Errorf("restore: mailbox %q: %w", sel.Mailbox, err)
		}
		want = n
	}
	root, name, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	dir := filepath.Join(root, name)
	if _, problems := verifyRecords(dir); len(problems) > 0 {
		return nil, fmt.Errorf("restore: backup %s is damaged (postfach backup verify says more): %s", name, problems[0])
	}
	m, err := readManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	acct, err := st.Account(ctx, sel.Account)
	if err != nil {
		return nil, fmt.Errorf("restore: account %s: %w", sel.Account, err)
	}
	var src int64
	err = readRecords(dir, m.File(KindAccounts), func(r *AccountRecord) error {
		if mail.NameKey(r.Name) == mail.NameKey(acct.Name) {
			src = r.ID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if src == 0 {
		return nil, fmt.Errorf("restore: backup %s has no account %s", name, acct.Name)
	}
	// The mailboxes selected, by their ID in the backup.
	type target struct {
		name string
		mb   *store.Mailbox
	}
	targets := map[int64]*target{}
	err = readRecords(dir, m.File(KindMailboxes), func(r *MailboxRecord) error {
		if r.Account == src && !r.NoSelect && (want == "" || r.Name == want) {
			targets[r.ID] = &target{name: r.Name}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if want != "" && len(targets) == 0 {
		return nil, fmt.Errorf("restore: backup %s has no mailbox %q of %s", name, want, acct.Name)
	}
	res := &PartialResult{Backup: name}
	// Which bodies the live mailboxes hold, for the sizes the backup's
	// messages have: only those bodies are read.
	sizes := map[int64]bool{}
	err = readRecords(dir, m.File(KindMessages), func(r *MessageRecord) error {
		if targets[r.Mailbox] != nil && r.Account == src {
			sizes[r.Size] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	present := map[string]bool{} // mailbox name + "\x00" + hash
	for _, t := range targets {
		mb, err := st.Mailbox(ctx, acct.ID, t.name)
		if errors.Is(err, store.ErrNotFound) {
			continue // created when a message needs it
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if mb.NoSelect {
			continue
		}
		t.mb = mb
		for lm, err := range st.Messages(ctx, acct.ID, mb.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
			if err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
			if !sizes[lm.Size] {
				continue
			}
			h, err := hashBody(ctx, st, lm.BlobID)
			if err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
			present[t.name+"\x00"+h] = true
		}
	}
	var batch []store.NewMessage
	var batchT *target
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := st.Append(ctx, acct.ID, batchT.mb.ID, batch)
		for _, b := range batch {
			b.Body.Discard()
		}
		if err == nil {
			res.Restored += int64(len(batch))
		}
		batch = batch[:0]
		return err
	}
	defer func() {
		for _, b := range batch {
			b.Body.Discard()
		}
	}()
	err = readRecords(dir, m.File(KindMessages), func(r *MessageRecord) error {
		t := targets[r.Mailbox]
		if t == nil || r.Account != src || (uids != nil && !uids.Contains(r.UID)) {
			return nil
		}
		key := t.name + "\x00" + r.SHA256
		if present[key] {
			res.Present++
			return nil
		}
		present[key] = true
		if t.mb == nil || t.mb.NoSelect {
			mb, err := st.CreateMailboxWith(ctx, acct.ID, t.name, store.CreateOptions{Parents: true, Subscribe: true})
			if errors.Is(err, store.ErrExists) {
				mb, err = st.Mailbox(ctx, acct.ID, t.name)
				if err == nil && mb.NoSelect {
					err = fmt.Errorf("mailbox %q is a \\Noselect name now", t.name)
				}
			} else if err == nil {
				res.Created = append(res.Created, t.name)
			}
			if err != nil {
				return err
			}
			t.mb = mb
		}
		if batchT != t || len(batch) >= 100 {
			if err := flush(); err != nil {
				return err
			}
		}
		body, err := stageBody(ctx, st, root, r.SHA256)
		if err != nil {
			return err
		}
		batchT = t
		batch = append(batch, store.NewMessage{Body: body, Flags: r.Flags, InternalDate: r.InternalDate})
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

func hashBody(ctx context.Context, st store.Store, blobID string) (string, error) {
	b, err := st.OpenBody(ctx, blobID)
	if err != nil {
		return "", err
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, b.Size())); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
