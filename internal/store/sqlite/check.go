package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/postfach/postfach/internal/store"
)

// Check implements store.Store.
func (s *Store) Check(ctx context.Context) ([]store.Problem, error) {
	var probs []store.Problem
	add := func(a store.AccountID, m store.MailboxID, format string, args ...any) {
		probs = append(probs, store.Problem{Account: a, Mailbox: m, What: fmt.Sprintf(format, args...)})
	}
	rows, err := s.rdb.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return []store.Problem{{What: fmt.Sprintf("database: %v; restore from a backup (docs/running.md, \"Damaged stores\")", err)}}, nil
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, fmt.Errorf("integrity check: %w", err)
		}
		if line != "ok" {
			add(0, 0, "database: %s", line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		add(0, 0, "database: %v", err)
	}
	if len(probs) > 0 {
		// The queries below would fail on the damage, and hide what was
		// found (issue 11).
		add(0, 0, "database damaged: the other checks were skipped; restore from a backup (docs/running.md, \"Damaged stores\")")
		return probs, nil
	}

	// Per-mailbox invariants, each a query that lists violations.
	checks := []struct{ what, q string }{
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
		{"UID %d is both stored and expunged (%d)", `SELECT mb.account_id, mb.id, m.uid, e.uid FROM messages m JOIN expunged e USING (mailbox_id, uid)
			JOIN mailboxes mb ON mb.id = m.mailbox_id`},
		{"message UID %d refers to a missing body (%d)", `SELECT mb.account_id, mb.id, m.uid, 0 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
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
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}

	// Every body: present, right size, right hash, and for a file body
	// the right record of its dot lines.
	rows, err = s.rdb.QueryContext(ctx, `SELECT id, hash, size, dots FROM blobs`)
	if err != nil {
		return nil, fmt.Errorf("check bodies: %w", err)
	}
	type blobRow struct {
		id   int64
		hash string
		size int64
		dots []byte
	}
	var blobs []blobRow
	for rows.Next() {
		var b blobRow
		if err := rows.Scan(&b.id, &b.hash, &b.size, &b.dots); err != nil {
			rows.Close()
			return nil, fmt.Errorf("check bodies: %w", err)
		}
		blobs = append(blobs, b)
	}
	rows.Close()
	for _, b := range blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		body, err := s.OpenBody(ctx, strconv.FormatInt(b.id, 10))
		if err != nil {
			add(0, 0, "body %d (%s): %v", b.id, b.hash, err)
			continue
		}
		h := sha256.New()
		var dots store.DotScanner
		n, err := io.Copy(io.MultiWriter(h, &dots), io.NewSectionReader(body, 0, body.Size()))
		body.Close()
		switch {
		case err != nil:
			add(0, 0, "body %d (%s): read: %v", b.id, b.hash, err)
		case n != b.size:
			add(0, 0, "body %d (%s): size %d, recorded %d", b.id, b.hash, n, b.size)
		case hex.EncodeToString(h.Sum(nil)) != b.hash:
			add(0, 0, "body %d (%s): content does not match its hash", b.id, b.hash)
		case b.dots != nil && !bytes.Equal(b.dots, dots.Encode()):
			add(0, 0, "body %d (%s): wrong record of the lines that begin with \".\" (POP3 would stuff it wrongly)", b.id, b.hash)
		}
	}
	return probs, nil
}
