package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Report is what Verify found.
type Report struct {
	// Backups are the backups checked (directory names).
	Backups []string
	// Bodies and Bytes count the bodies checked.
	Bodies int64
	Bytes  int64
	// Problems lists everything wrong, each naming the backup and what.
	Problems []string
}

// Open finds the backup a path names: a backup directory itself, or a
// root, whose newest backup it picks. It returns the root (which holds
// blobs/) and the backup's directory name.
func Open(path string) (root, name string, err error) {
	if _, err := os.Stat(filepath.Join(path, ManifestName)); err == nil {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", "", err
		}
		return filepath.Dir(abs), filepath.Base(abs), nil
	}
	names, err := List(path)
	if err != nil {
		return "", "", err
	}
	if len(names) == 0 {
		return "", "", fmt.Errorf("%s: no backup there (no %s, no postfach-* directory)", path, ManifestName)
	}
	return path, names[len(names)-1], nil
}

// Verify checks the backups a path names: a root (every backup in it) or
// one backup. It reads every record and every body, and reports what is
// wrong; the error is for failures to run at all.
func Verify(ctx context.Context, path string) (*Report, error) {
	var root string
	var names []string
	if _, err := os.Stat(filepath.Join(path, ManifestName)); err == nil {
		r, name, err := Open(path)
		if err != nil {
			return nil, err
		}
		root, names = r, []string{name}
	} else {
		root = path
		if names, err = List(root); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no backup there", path)
		}
	}
	rep := &Report{Backups: names}
	checked := map[string]bool{}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bodies, problems := verifyRecords(filepath.Join(root, name))
		for _, p := range problems {
			rep.Problems = append(rep.Problems, name+": "+p)
		}
		for h, size := range bodies {
			if checked[h] {
				continue
			}
			checked[h] = true
			if err := checkBody(ctx, root, h, size); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				rep.Problems = append(rep.Problems, name+": "+err.Error())
				continue
			}
			rep.Bodies++
			rep.Bytes += size
		}
	}
	return rep, nil
}

// checkBody checks one body file against its name and size.
func checkBody(ctx context.Context, root, hash string, size int64) error {
	f, err := os.Open(filepath.Join(root, "blobs", hash))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("body %s is missing", hash)
	}
	if err != nil {
		return fmt.Errorf("body %s: %w", hash, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, readerCtx{ctx, f})
	if err != nil {
		return fmt.Errorf("body %s: %w", hash, err)
	}
	if n != size {
		return fmt.Errorf("body %s has %d bytes, want %d", hash, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return fmt.Errorf("body %s is damaged: its content hashes to %s", hash, got)
	}
	return nil
}

// readerCtx stops reading when ctx ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// verifyRecords reads every record of the backup in dir and checks the
// references between them. It returns the bodies the backup lists.
func verifyRecords(dir string) (map[string]int64, []string) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		fail("%v", err)
		return nil, problems
	}
	m, err := ParseManifest(data)
	if err != nil {
		fail("%v", err)
		return nil, problems
	}
	bodies := map[string]int64{}
	check := func(err error) {
		if err != nil {
			fail("%v", err)
		}
	}
	check(readRecords(dir, m.File(KindBodies), func(r *BodyRecord) error {
		if !blob.ValidID(r.SHA256) || r.Size < 0 {
			return fmt.Errorf("bad body %q", r.SHA256)
		}
		if _, dup := bodies[r.SHA256]; dup {
			return fmt.Errorf("body %s listed twice", r.SHA256)
		}
		bodies[r.SHA256] = r.Size
		return nil
	}))
	accounts := map[int64]bool{}
	names := map[string]bool{}
	check(readRecords(dir, m.File(KindAccounts), func(r *AccountRecord) error {
		if r.ID == 0 || accounts[r.ID] || r.Name == "" || names[mail.NameKey(r.Name)] {
			return fmt.Errorf("account %d %q: empty or listed twice", r.ID, r.Name)
		}
		accounts[r.ID], names[mail.NameKey(r.Name)] = true, true
		return nil
	}))
	knownAccount := func(id int64) error {
		if !accounts[id] {
			return fmt.Errorf("unknown account %d", id)
		}
		return nil
	}
	check(readRecords(dir, m.File(KindDevices), func(r *DeviceRecord) error { return knownAccount(r.Account) }))
	type mbox struct {
		account int64
		rec     MailboxRecord
		last    mail.UID
	}
	mailboxes := map[int64]*mbox{}
	check(readRecords(dir, m.File(KindMailboxes), func(r *MailboxRecord) error {
		if err := knownAccount(r.Account); err != nil {
			return err
		}
		if _, dup := mailboxes[r.ID]; dup || r.ID == 0 {
			return fmt.Errorf("mailbox %d listed twice", r.ID)
		}
		if _, err := store.CanonicalMailboxName(r.Name); err != nil {
			return fmt.Errorf("mailbox %q: %w", r.Name, err)
		}
		if r.UIDValidity == 0 || r.UIDNext < 1 || r.HighestModSeq < 1 {
			return fmt.Errorf("mailbox %q: bad UIDVALIDITY, UIDNEXT or HIGHESTMODSEQ", r.Name)
		}
		mailboxes[r.ID] = &mbox{account: r.Account, rec: *r}
		return nil
	}))
	mailboxOf := func(acct, id int64) (*mbox, error) {
		mb := mailboxes[id]
		if mb == nil || mb.account != acct {
			return nil, fmt.Errorf("unknown mailbox %d of account %d", id, acct)
		}
		return mb, nil
	}
	body := func(r *MessageRecord) error {
		size, ok := bodies[r.SHA256]
		if !ok {
			return fmt.Errorf("UID %d: body %s not listed", r.UID, r.SHA256)
		}
		if size != r.Size {
			return fmt.Errorf("UID %d: size %d, its body has %d", r.UID, r.Size, size)
		}
		return nil
	}
	check(readRecords(dir, m.File(KindSubscriptions), func(r *SubscriptionRecord) error { return knownAccount(r.Account) }))
	check(readRecords(dir, m.File(KindMessages), func(r *MessageRecord) error {
		mb, err := mailboxOf(r.Account, r.Mailbox)
		if err != nil {
			return err
		}
		if r.UID <= mb.last || r.UID >= mb.rec.UIDNext || r.ModSeq < 1 || r.ModSeq > mb.rec.HighestModSeq {
			return fmt.Errorf("mailbox %q UID %d MODSEQ %d: out of order or past UIDNEXT %d, HIGHESTMODSEQ %d",
				mb.rec.Name, r.UID, r.ModSeq, mb.rec.UIDNext, mb.rec.HighestModSeq)
		}
		mb.last = r.UID
		return body(r)
	}))
	check(readRecords(dir, m.File(KindExpunged), func(r *MessageRecord) error {
		if err := knownAccount(r.Account); err != nil {
			return err
		}
		if r.Expunged.IsZero() {
			return fmt.Errorf("UID %d: no expunge time", r.UID)
		}
		return body(r)
	}))
	check(readRecords(dir, m.File(KindPOP3Views), func(r *POP3ViewRecord) error {
		if _, err := mailboxOf(r.Account, r.Mailbox); err != nil {
			return err
		}
		_, err := mail.ParseUIDSet(r.Hidden)
		return err
	}))
	check(readRecords(dir, m.File(KindMetadata), func(r *MetadataRecord) error {
		if r.Mailbox == 0 {
			return knownAccount(r.Account)
		}
		_, err := mailboxOf(r.Account, r.Mailbox)
		return err
	}))
	check(readRecords(dir, m.File(KindAccessKeys), func(r *AccessKeyRecord) error {
		_, err := mailboxOf(r.Account, r.Mailbox)
		return err
	}))
	check(readRecords(dir, m.File(KindAliases), func(r *AliasRecord) error {
		for _, t := range r.Targets {
			if err := knownAccount(t); err != nil {
				return err
			}
		}
		return nil
	}))
	check(readRecords(dir, m.File(KindSetupLinks), func(r *SetupLinkRecord) error { return knownAccount(r.Account) }))
	if int64(len(bodies)) != m.Bodies {
		fail("%d bodies listed, the manifest says %d", len(bodies), m.Bodies)
	}
	return bodies, problems
}
