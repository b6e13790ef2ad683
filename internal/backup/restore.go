package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// DefaultUIDMargin is how far a full restore raises every mailbox's
// UIDNEXT and HIGHESTMODSEQ by default (--uid-margin).
const DefaultUIDMargin = 1_000_000

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// UIDMargin raises every mailbox's UIDNEXT and HIGHESTMODSEQ, so that
	// no UID or MODSEQ a device saw after the backup is ever given to
	// another message (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
	UIDMargin uint32
	// NewUIDValidity gives every mailbox a new UIDVALIDITY: every device
	// then forgets what it has and downloads the mailbox again.
	NewUIDValidity bool
	// Logger receives progress and what was left out; nil discards.
	Logger *slog.Logger
	// Progress, when set, is called after each batch of messages with
	// the number restored so far and the total.
	Progress func(done, total int64)
}

// RestoreResult reports a restore.
type RestoreResult struct {
	Backup    string
	Accounts  int
	Mailboxes int
	Messages  int64
	Expunged  int64
	// Skipped says what was not restored and why.
	Skipped []string
}

// restoreBatch bounds the messages of one RestoreMessages call; the
// bodies of a batch are staged before it (at most restoreBatchBytes).
const (
	restoreBatch      = 500
	restoreBatchBytes = 64 << 20
)

// Restore writes the backup that path names (a backup, or the newest in
// a root) into dst, which must hold no account. The records are checked
// first (verify without the bodies); each body is checked against its
// hash as it is read.
func Restore(ctx context.Context, dst store.Store, path string, opt RestoreOptions) (*RestoreResult, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, isR := dst.(store.Restorer)
	if !isR {
		return nil, errors.New("restore: this store cannot restore backups")
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
	if accts, err := dst.Accounts(ctx); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	} else if len(accts) > 0 {
		return nil, fmt.Errorf("restore: the store already has %d accounts; a full restore goes into an empty one", len(accts))
	}
	res := &RestoreResult{Backup: name}
	skip := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		res.Skipped = append(res.Skipped, s)
		log.Warn("restore: left out", "what", s)
	}

	accounts := map[int64]store.AccountID{}
	err = readRecords(dir, m.File(KindAccounts), func(rec *AccountRecord) error {
		a, err := r.RestoreAccount(ctx, store.AccountRecord{
			Account: store.Account{Name: rec.Name, PasswordHash: rec.PasswordHash, Settings: rec.Settings, Created: rec.Created},
			SCRAM:   rec.SCRAM, Quota: store.Quota{Bytes: rec.QuotaBytes, Messages: rec.QuotaMessages}})
		if err != nil {
			return err
		}
		accounts[rec.ID] = a.ID
		res.Accounts++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = readRecords(dir, m.File(KindDevices), func(rec *DeviceRecord) error {
		return r.RestoreDevice(ctx, accounts[rec.Account], store.Device{Name: rec.Name, PasswordHash: rec.PasswordHash, SCRAM: rec.SCRAM,
			Created: rec.Created, Revoked: rec.Revoked, LastLogin: rec.LastLogin, LastRemote: rec.LastRemote, LastProto: rec.LastProto,
			LastClient: rec.LastClient})
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	type restored struct {
		id      store.MailboxID
		account store.AccountID
		oldUV   uint32
		newUV   uint32
	}
	mailboxes := map[int64]restored{}
	nextUV := uint32(max(time.Now().Unix(), 1))
	err = readRecords(dir, m.File(KindMailboxes), func(rec *MailboxRecord) error {
		nextUV = max(nextUV, rec.UIDValidity+1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = readRecords(dir, m.File(KindMailboxes), func(rec *MailboxRecord) error {
		mb := store.Mailbox{Name: rec.Name, SpecialUse: rec.SpecialUse, NoSelect: rec.NoSelect, UIDValidity: rec.UIDValidity,
			UIDNext: rec.UIDNext, HighestModSeq: rec.HighestModSeq + mail.ModSeq(opt.UIDMargin)}
		if uint64(mb.UIDNext)+uint64(opt.UIDMargin) > uint64(mail.MaxUID) {
			mb.UIDNext = mail.MaxUID
		} else {
			mb.UIDNext += mail.UID(opt.UIDMargin)
		}
		if opt.NewUIDValidity {
			mb.UIDValidity = nextUV
			nextUV++
		}
		nm, err := r.RestoreMailbox(ctx, accounts[rec.Account], mb)
		if err != nil {
			return err
		}
		mailboxes[rec.ID] = restored{id: nm.ID, account: accounts[rec.Account], oldUV: rec.UIDValidity, newUV: nm.UIDValidity}
		res.Mailboxes++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	// Messages, in batches per mailbox.
	total := m.File(KindMessages).Records
	var batch []store.RestoreMessage
	var batchMB restored
	var batchBytes int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.RestoreMessages(ctx, batchMB.account, batchMB.id, batch)
		for _, b := range batch {
			b.Body.Discard()
		}
		batch, batchBytes = batch[:0], 0
		if err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(res.Messages, total)
		}
		return nil
	}
	defer func() {
		for _, b := range batch {
			b.Body.Discard()
		}
	}()
	add := func(rec *MessageRecord, mb restored, expunged bool) error {
		if len(batch) > 0 && (batchMB.id != mb.id || len(batch) >= restoreBatch || batchBytes >= restoreBatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		body, err := stageBody(ctx, dst, root, rec.SHA256)
		if err != nil {
			return err
		}
		batchMB = mb
		batchBytes += rec.Size
		rm := store.RestoreMessage{Body: body, UID: rec.UID, ModSeq: rec.ModSeq, Flags: rec.Flags, InternalDate: rec.InternalDate,
			SaveDate: rec.SaveDate, EmailID: rec.EmailID, POPUID: rec.POPUID}
		if expunged {
			rm.Expunged = rec.Expunged
			res.Expunged++
		} else {
			res.Messages++
		}
		batch = append(batch, rm)
		return nil
	}
	err = readRecords(dir, m.File(KindMessages), func(rec *MessageRecord) error { return add(rec, mailboxes[rec.Mailbox], false) })
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	deleted := 0
	err = readRecords(dir, m.File(KindExpunged), func(rec *MessageRecord) error {
		mb, ok := mailboxes[rec.Mailbox]
		if !ok {
			deleted++
			return nil
		}
		return add(rec, mb, true)
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if deleted > 0 {
		skip("%d retained expunged messages of deleted mailboxes (undelete them from the old server's backup by a partial restore of their mailbox)", deleted)
	}

	err = readRecords(dir, m.File(KindSubscriptions), func(rec *SubscriptionRecord) error {
		return dst.SetSubscribed(ctx, accounts[rec.Account], rec.Name, true)
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = readRecords(dir, m.File(KindPOP3Views), func(rec *POP3ViewRecord) error {
		mb := mailboxes[rec.Mailbox]
		hidden, err := mail.ParseUIDSet(rec.Hidden)
		if err != nil {
			return err
		}
		uv := rec.UIDValidity
		if uv == mb.oldUV {
			uv = mb.newUV // a view of the mailbox as it is; a stale one stays stale
		}
		return r.RestorePOP3View(ctx, mb.account, store.POP3View{Device: rec.Device, Mailbox: mb.id, UIDValidity: uv, Hidden: hidden,
			Created: rec.Created, LastUsed: rec.LastUsed})
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = readRecords(dir, m.File(KindMetadata), func(rec *MetadataRecord) error {
		acct, mb := accounts[rec.Account], store.MailboxID(0)
		if rec.Mailbox != 0 {
			mb = mailboxes[rec.Mailbox].id
		}
		return dst.SetMetadata(ctx, acct, mb, map[string][]byte{rec.Name: rec.Value}, 0, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	err = readRecords(dir, m.File(KindAccessKeys), func(rec *AccessKeyRecord) error {
		mb := mailboxes[rec.Mailbox]
		return r.RestoreAccessKey(ctx, mb.account, mb.id, rec.Key)
	})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if al, isAl := dst.(store.Aliases); isAl {
		err = readRecords(dir, m.File(KindAliases), func(rec *AliasRecord) error {
			var targets []store.AccountID
			for _, t := range rec.Targets {
				targets = append(targets, accounts[t])
			}
			_, err := al.AddAlias(ctx, rec.Address, targets)
			return err
		})
	} else if n := m.File(KindAliases).Records; n > 0 {
		skip("%d aliases: this store keeps none", n)
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if sl, isSL := dst.(store.SetupLinks); isSL {
		err = readRecords(dir, m.File(KindSetupLinks), func(rec *SetupLinkRecord) error {
			_, err := sl.AddSetupLink(ctx, store.SetupLink{ID: rec.ID, Account: accounts[rec.Account], Device: rec.Device, Sealed: rec.Sealed,
				Created: rec.Created, Expires: rec.Expires}, "", "")
			if err != nil {
				skip("the setup link of device %s: %v", rec.Device, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	log.Info("restore done", "backup", name, "accounts", res.Accounts, "mailboxes", res.Mailboxes, "messages", res.Messages, "expunged", res.Expunged)
	return res, nil
}

func readManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// stageBody stages the body named hash from root/blobs into st and checks
// that it is what its name says.
func stageBody(ctx context.Context, st store.Store, root, hash string) (store.Staged, error) {
	f, err := os.Open(filepath.Join(root, "blobs", hash))
	if err != nil {
		return nil, fmt.Errorf("body %s: %w", hash, err)
	}
	defer f.Close()
	b, err := st.Stage(ctx, f, 0)
	if err != nil {
		return nil, fmt.Errorf("body %s: %w", hash, err)
	}
	if b.BlobID() != hash {
		b.Discard()
		return nil, fmt.Errorf("body %s is damaged (its content hashes to %s)", hash, b.BlobID())
	}
	return b, nil
}
