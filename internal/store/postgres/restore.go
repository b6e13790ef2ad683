package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

var _ store.Restorer = (*Store)(nil)

// RestoreAccount implements store.Restorer.
func (s *Store) RestoreAccount(ctx context.Context, a store.AccountRecord) (*store.Account, error) {
	if a.Name == "" || strings.ContainsAny(a.Name, " \t\r\n\x00") {
		return nil, fmt.Errorf("restore account %q: invalid name", a.Name)
	}
	if a.Quota.Bytes < store.QuotaDefault || a.Quota.Messages < store.QuotaDefault {
		return nil, fmt.Errorf("restore account %q: negative quota", a.Name)
	}
	settings := a.Settings
	if settings == nil {
		settings = map[string]string{}
	}
	sj, err := json.Marshal(settings)
	if err != nil {
		return nil, fmt.Errorf("restore account %q: %w", a.Name, err)
	}
	own := func(v int64) any {
		if v == store.QuotaDefault {
			return nil
		}
		return v
	}
	created := a.Created
	if created.IsZero() {
		created = time.Now()
	}
	var acct store.Account
	err = s.writeGrow(ctx, func(w *wtx) error {
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM accounts WHERE name_key = ?`, mail.NameKey(a.Name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		id, err := insertID(w, `INSERT INTO accounts (name, name_key, password_hash, settings, created, quota_bytes, quota_messages)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, a.Name, mail.NameKey(a.Name), a.PasswordHash, string(sj), created.Unix(),
			own(a.Quota.Bytes), own(a.Quota.Messages))
		if err != nil {
			return err
		}
		if a.SCRAM != "" {
			if _, err := w.ExecContext(w.ctx, `INSERT INTO account_scram (account_id, password_hash, scram) VALUES (?, ?, ?)`,
				id, a.PasswordHash, a.SCRAM); err != nil {
				return err
			}
		}
		w.afterCommit(s.accounts.invalidate)
		acct = store.Account{ID: store.AccountID(id), Name: a.Name, PasswordHash: a.PasswordHash, Settings: settings,
			Created: time.Unix(created.Unix(), 0)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore account %q: %w", a.Name, err)
	}
	return &acct, nil
}

// RestoreMailbox implements store.Restorer. The tombstone floor
// (vanished_floor) is the HIGHESTMODSEQ given, so that QRESYNC from any
// earlier MODSEQ compares UID lists (RFC 7162 §3.2.5.2) rather than trust
// tombstones the store may never have had.
func (s *Store) RestoreMailbox(ctx context.Context, acct store.AccountID, m store.Mailbox) (*store.Mailbox, error) {
	name, err := store.CanonicalMailboxName(m.Name)
	if err != nil {
		return nil, fmt.Errorf("restore mailbox %q: %w", m.Name, err)
	}
	if m.UIDValidity == 0 || m.UIDNext < 1 || m.HighestModSeq < 1 {
		return nil, fmt.Errorf("restore mailbox %q: UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ must be at least 1", m.Name)
	}
	var out *store.Mailbox
	err = s.writeGrow(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		var n int
		if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM mailboxes WHERE account_id = ? AND name = ?`, acct, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		id, err := insertID(w, `INSERT INTO mailboxes (account_id, name, special_use, noselect, uidvalidity, uidnext, highestmodseq,
			first_recent, vanished_floor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			acct, name, strings.Join(m.SpecialUse, " "), m.NoSelect, m.UIDValidity, m.UIDNext, m.HighestModSeq, m.UIDNext, m.HighestModSeq)
		if err != nil {
			return err
		}
		// nextUIDValidity never hands this UIDVALIDITY out again.
		if _, err := w.ExecContext(w.ctx, `INSERT INTO meta (key, value) VALUES ('uidvalidity', ?)
			ON CONFLICT (key) DO UPDATE SET value = greatest(CAST(meta.value AS BIGINT), CAST(excluded.value AS BIGINT))::text`,
			strconv.FormatUint(uint64(m.UIDValidity), 10)); err != nil {
			return err
		}
		out = &store.Mailbox{ID: store.MailboxID(id), Account: acct, Name: name, SpecialUse: m.SpecialUse, NoSelect: m.NoSelect,
			UIDValidity: m.UIDValidity, UIDNext: m.UIDNext, HighestModSeq: m.HighestModSeq}
		w.event(store.Event{Account: acct, Mailbox: out.ID, Kind: store.EventMailboxCreated, Name: name, ModSeq: m.HighestModSeq})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore mailbox %q: %w", m.Name, err)
	}
	return out, nil
}

// RestoreMessages implements store.Restorer.
func (s *Store) RestoreMessages(ctx context.Context, acct store.AccountID, id store.MailboxID, msgs []store.RestoreMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	bodies := make([]*staged, len(msgs))
	flags := make([]mail.Flags, len(msgs))
	for i, m := range msgs {
		b, err := s.asStaged(m.Body)
		if err != nil {
			return fmt.Errorf("restore messages: %w", err)
		}
		bodies[i] = b
		flags[i] = mail.NewFlags(m.Flags...)
		if err := validFlags(flags[i]); err != nil {
			return fmt.Errorf("restore messages: %w", err)
		}
	}
	err := s.writeGrow(ctx, func(w *wtx) error {
		mb, err := loadMailboxTx(w, acct, id)
		if err != nil {
			return err
		}
		if mb.noselect {
			return store.ErrNoSelect
		}
		now := time.Now()
		var c counters
		for i, m := range msgs {
			if m.UID < 1 || m.UID >= mb.uidnext {
				return fmt.Errorf("UID %d not below UIDNEXT %d", m.UID, mb.uidnext)
			}
			if m.ModSeq < 1 || m.ModSeq > mb.highestModSeq {
				return fmt.Errorf("MODSEQ %d of UID %d past HIGHESTMODSEQ %d", m.ModSeq, m.UID, mb.highestModSeq)
			}
			var n int
			if err := w.QueryRowContext(w.ctx, `SELECT (SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND uid = ?2)
				+ (SELECT count(*) FROM expunged WHERE mailbox_id = ?1 AND uid = ?2)`, id, m.UID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("UID %d: %w", m.UID, store.ErrExists)
			}
			blobRow, err := insertBlobTx(w, bodies[i], now.Unix())
			if err != nil {
				return err
			}
			bits, kw := flags[i].Bits()
			date := m.InternalDate
			if date.IsZero() {
				date = now
			}
			ds, dz := unixTZ(date)
			emailID := m.EmailID
			if emailID == "" {
				emailID = newEmailID()
			}
			if !m.Expunged.IsZero() {
				if _, err := w.ExecContext(w.ctx, `INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at, account_id, mailbox_name,
					flags, keywords, internal_date, internal_tz, size, blob_id, email_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					id, m.UID, m.ModSeq, m.Expunged.Unix(), acct, mb.name, bits, keywordsString(kw), ds, dz, bodies[i].size, blobRow, emailID); err != nil {
					return err
				}
				continue
			}
			saved := m.SaveDate
			if saved.IsZero() {
				saved = now
			}
			if _, err := w.ExecContext(w.ctx, `INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, internal_tz,
				save_date, size, blob_id, email_id, pop_uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, m.UID, m.ModSeq, bits, keywordsString(kw), ds, dz, saved.Unix(), bodies[i].size, blobRow, emailID, m.POPUID); err != nil {
				return err
			}
			c.add(bits, bodies[i].size, 1)
		}
		if err := bumpMailbox(w, id, mb.uidnext, mb.highestModSeq, c); err != nil {
			return err
		}
		w.event(store.Event{Account: acct, Mailbox: id, Kind: store.EventMessages, ModSeq: mb.highestModSeq})
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore messages into mailbox %d: %w", id, err)
	}
	return nil
}

// RestoreDevice implements store.Restorer.
func (s *Store) RestoreDevice(ctx context.Context, acct store.AccountID, d store.Device) error {
	if d.Name == "" || d.Name != strings.ToLower(d.Name) {
		return fmt.Errorf("restore device %q: invalid name", d.Name)
	}
	unix := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.Unix()
	}
	created := d.Created
	if created.IsZero() {
		created = time.Now()
	}
	err := s.write(ctx, func(w *wtx) error {
		if err := accountExists(w, acct); err != nil {
			return err
		}
		_, err := w.ExecContext(w.ctx, `INSERT INTO devices (account_id, name, password_hash, scram, created, revoked,
			last_login, last_remote, last_proto, last_client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, name) DO UPDATE SET password_hash = excluded.password_hash, scram = excluded.scram,
			created = excluded.created, revoked = excluded.revoked, last_login = excluded.last_login,
			last_remote = excluded.last_remote, last_proto = excluded.last_proto, last_client = excluded.last_client`,
			acct, d.Name, d.PasswordHash, d.SCRAM, created.Unix(), unix(d.Revoked), unix(d.LastLogin), d.LastRemote, d.LastProto, d.LastClient)
		return err
	})
	if err != nil {
		return fmt.Errorf("restore device %q: %w", d.Name, err)
	}
	return nil
}

// RestorePOP3View implements store.Restorer.
func (s *Store) RestorePOP3View(ctx context.Context, acct store.AccountID, v store.POP3View) error {
	err := s.write(ctx, func(w *wtx) error {
		if _, err := loadMailboxTx(w, acct, v.Mailbox); err != nil {
			return err
		}
		_, err := w.ExecContext(w.ctx, `INSERT INTO pop3_views (account_id, device, mailbox_id, uidvalidity, hidden, created, last_used)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, device, mailbox_id) DO UPDATE SET uidvalidity = excluded.uidvalidity,
			hidden = excluded.hidden, created = excluded.created, last_used = excluded.last_used`, acct, v.Device, v.Mailbox, v.UIDValidity, v.Hidden.String(), v.Created.Unix(), v.LastUsed.Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("restore pop3 view %q: %w", v.Device, err)
	}
	return nil
}

// RestoreAccessKey implements store.Restorer.
func (s *Store) RestoreAccessKey(ctx context.Context, acct store.AccountID, mailbox store.MailboxID, key []byte) error {
	if len(key) != store.AccessKeySize {
		return fmt.Errorf("restore access key of mailbox %d: want %d bytes, have %d", mailbox, store.AccessKeySize, len(key))
	}
	err := s.write(ctx, func(w *wtx) error {
		var noselect bool
		err := w.QueryRowContext(w.ctx, `SELECT noselect FROM mailboxes WHERE id = ? AND account_id = ?`, mailbox, acct).Scan(&noselect)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if noselect {
			return store.ErrNoSelect
		}
		_, err = w.ExecContext(w.ctx, `INSERT INTO access_keys (mailbox_id, account_id, key, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (mailbox_id) DO UPDATE SET account_id = excluded.account_id, key = excluded.key, created = excluded.created`,
			mailbox, acct, key, time.Now().Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("restore access key of mailbox %d: %w", mailbox, err)
	}
	return nil
}
