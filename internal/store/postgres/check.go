package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Check implements store.Store.
func (s *Store) Check(ctx context.Context) ([]store.Problem, error) {
	var probs []store.Problem
	add := func(a store.AccountID, m store.MailboxID, format string, args ...any) {
		probs = append(probs, store.Problem{Account: a, Mailbox: m, What: fmt.Sprintf(format, args...)})
	}
	// Per-mailbox invariants, each a query that lists violations.
	checks := []struct{ what, q string }{ // a query's third column is a UID when the text names one
		{"UIDNEXT %d is not above every UID (max %d)", `SELECT mb.account_id, mb.id, mb.uidnext, max(x.uid) FROM mailboxes mb
			JOIN (SELECT mailbox_id, uid FROM messages UNION ALL SELECT mailbox_id, uid FROM expunged) x ON x.mailbox_id = mb.id
			GROUP BY mb.id HAVING max(x.uid) >= mb.uidnext`},
		{"HIGHESTMODSEQ %d is below a message MODSEQ (max %d)", `SELECT mb.account_id, mb.id, mb.highestmodseq, max(x.modseq) FROM mailboxes mb
			JOIN (SELECT mailbox_id, modseq FROM messages UNION ALL SELECT mailbox_id, modseq FROM expunged) x ON x.mailbox_id = mb.id
			GROUP BY mb.id HAVING max(x.modseq) > mb.highestmodseq`},
		{"message count %d differs from the messages stored (%d)", `SELECT mb.account_id, mb.id, mb.msg_count, count(m.uid) FROM mailboxes mb
			LEFT JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id HAVING count(m.uid) != mb.msg_count`},
		{"unseen count %d differs from the messages stored (%d)", `SELECT mb.account_id, mb.id, mb.unseen_count, count(m.uid) FROM mailboxes mb
			LEFT JOIN messages m ON m.mailbox_id = mb.id AND (m.flags & 1) = 0 GROUP BY mb.id HAVING count(m.uid) != mb.unseen_count`},
		{"deleted count %d differs from the messages stored (%d)", `SELECT mb.account_id, mb.id, mb.deleted_count, count(m.uid) FROM mailboxes mb
			LEFT JOIN messages m ON m.mailbox_id = mb.id AND (m.flags & 8) != 0 GROUP BY mb.id HAVING count(m.uid) != mb.deleted_count`},
		{"total size %d differs from the messages stored (%d)", `SELECT mb.account_id, mb.id, mb.total_size, coalesce(sum(m.size), 0) FROM mailboxes mb
			LEFT JOIN messages m ON m.mailbox_id = mb.id GROUP BY mb.id HAVING coalesce(sum(m.size), 0) != mb.total_size`},
		{"size of the messages with \\Deleted %d differs from the messages stored (%d)", `SELECT mb.account_id, mb.id, mb.deleted_size, coalesce(sum(m.size), 0) FROM mailboxes mb
			LEFT JOIN messages m ON m.mailbox_id = mb.id AND (m.flags & 8) != 0 GROUP BY mb.id HAVING coalesce(sum(m.size), 0) != mb.deleted_size`},
		// The quota usage (quota.go), per account.
		{"quota usage %d bytes differs from the messages stored (%d)", `SELECT a.id, 0, a.used_bytes, coalesce(sum(m.size), 0) FROM accounts a
			LEFT JOIN mailboxes mb ON mb.account_id = a.id LEFT JOIN messages m ON m.mailbox_id = mb.id
			GROUP BY a.id HAVING coalesce(sum(m.size), 0) != a.used_bytes`},
		{"quota usage %d messages differs from the messages stored (%d)", `SELECT a.id, 0, a.used_messages, count(m.uid) FROM accounts a
			LEFT JOIN mailboxes mb ON mb.account_id = a.id LEFT JOIN messages m ON m.mailbox_id = mb.id
			GROUP BY a.id HAVING count(m.uid) != a.used_messages`},
		{"UID %d is both stored and expunged (%d)", `SELECT mb.account_id, mb.id, m.uid, e.uid FROM messages m JOIN expunged e USING (mailbox_id, uid)
			JOIN mailboxes mb ON mb.id = m.mailbox_id`},
		{"message UID %d refers to a missing body (%d)", `SELECT mb.account_id, mb.id, m.uid, m.blob_id FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
			WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = m.blob_id)`},
		{"message UID %d has size different from its body (%d)", `SELECT mb.account_id, mb.id, m.uid, b.size FROM messages m
			JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN blobs b ON b.id = m.blob_id WHERE b.size != m.size`},
	}
	for _, c := range checks {
		rows, err := s.rdb.QueryContext(ctx, c.q)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		for rows.Next() {
			var a store.AccountID
			var m store.MailboxID
			var x, y int64
			if err := rows.Scan(&a, &m, &x, &y); err != nil {
				rows.Close()
				return nil, fmt.Errorf("check: %w", err)
			}
			add(a, m, c.what, x, y)
			if strings.HasPrefix(c.what, "message UID") || strings.HasPrefix(c.what, "UID") {
				probs[len(probs)-1].UID = mail.UID(x)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}

	// Every body: present, right size, right hash, and for a file body
	// the right record of its dot lines. A damaged body is recorded as
	// such (OpenBody refuses it from then on) and reported once for every
	// message that uses it, by account, mailbox and UID.
	var after int64
	for {
		page, err := s.bodyPage(ctx, after)
		if err != nil {
			return nil, fmt.Errorf("check bodies: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, b := range page {
			after = b.id
			reason, dots, err := s.checkBody(ctx, b, nil)
			if err != nil {
				return nil, fmt.Errorf("check body %d: %w", b.id, err)
			}
			if reason == "" && b.dots != nil && dots != nil && !sameScan(b.dots, dots) {
				reason = `wrong record of the lines that begin with "." (POP3 would stuff it wrongly)`
			} else if reason != "" {
				reason = "message body damaged: " + reason
			}
			if reason == "" {
				continue
			}
			locs, err := s.bodyLocations(ctx, b.id)
			if err != nil {
				return nil, fmt.Errorf("check body %d: %w", b.id, err)
			}
			what := fmt.Sprintf("%s (body %d, sha256 %s)", reason, b.id, b.hash)
			if len(locs) == 0 {
				probs = append(probs, store.Problem{What: what + "; no message uses it"})
			}
			for _, l := range locs {
				probs = append(probs, store.Problem{Account: l.account, AccountName: l.accountName,
					Mailbox: l.mailbox, MailboxName: l.mailboxName, UID: l.uid, What: what})
			}
		}
	}
	return s.nameProblems(ctx, probs), nil
}

// nameProblems fills in the account and mailbox names of problems that
// have only ids.
func (s *Store) nameProblems(ctx context.Context, probs []store.Problem) []store.Problem {
	for i := range probs {
		p := &probs[i]
		if p.Account != 0 && p.AccountName == "" {
			if a, err := s.AccountByID(ctx, p.Account); err == nil {
				p.AccountName = a.Name
			}
		}
		if p.Mailbox != 0 && p.MailboxName == "" {
			if mb, err := s.MailboxByID(ctx, p.Account, p.Mailbox); err == nil {
				p.MailboxName = mb.Name
			}
		}
	}
	return probs
}

// sameScan reports whether a body's stored scan record says what a fresh
// scan found; a record from before NUL was recorded is compared on its
// dot lines alone.
func sameScan(stored, fresh []byte) bool {
	offs, endsLF, nul, nulKnown, err := store.DecodeScan(stored)
	if err != nil {
		return false
	}
	wantOffs, wantLF, wantNUL, _, err := store.DecodeScan(fresh)
	return err == nil && slices.Equal(offs, wantOffs) && endsLF == wantLF && (!nulKnown || nul == wantNUL)
}
