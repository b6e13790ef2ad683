package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/postfach/postfach/internal/store"
)

// Quotas (RFC 9208 limits, kept by the store: store/quota.go) are
// checked when a recipient is accepted, at RCPT, and never after DATA:
//
//   - a recipient at or over its quota, or one that the SIZE= the client
//     announced (RFC 1870) would take over it, is refused for now: SMTP
//     452 4.2.2 (RFC 3463 X.2.2, mailbox full); the client keeps the
//     message and tries again later, when the owner may have made room;
//   - when the announced size alone is more than the recipient's whole
//     quota, no retry can help: 552 5.2.2;
//   - a recipient accepted under its quota takes the message after DATA
//     even if that one message takes it over (the size announced may be
//     missing or wrong, and trace headers are added). So SMTP's one reply
//     for all recipients never fails for one of them on its quota and
//     holds the others back (store.DeliverAll), and an LMTP client gets
//     its per-recipient answer at RCPT already.
//
// An alias is accepted only when every account it names can take the
// message: a member whose mailbox is full holds the alias back (452,
// the sender retries), rather than the others getting the message and
// that member never (nothing queues mail for one member yet).
//
// `postfach deliver` checks the same way before it stores.

// Errors of CheckQuota. Both match store.ErrOverQuota with errors.Is.
var (
	// ErrMailboxFull: the recipient is at or over its quota, or would be
	// with the announced size; try again later.
	ErrMailboxFull = fmt.Errorf("%w: mailbox full", store.ErrOverQuota)
	// ErrQuotaTooSmall: the message alone is larger than the recipient's
	// quota; it can never be delivered.
	ErrQuotaTooSmall = fmt.Errorf("%w: message larger than the whole quota", store.ErrOverQuota)
)

// CheckQuota reports whether every account of r can take a message of
// size bytes (0 when the size is not known) under its quota, with
// ErrQuotaTooSmall or else ErrMailboxFull when one cannot; other errors
// are the store's (temporary).
func (d *Deliverer) CheckQuota(ctx context.Context, r *Recipient, size int64) error {
	var full, other error
	seen := map[store.AccountID]bool{}
	for _, t := range r.Targets {
		if seen[t.Account] {
			continue
		}
		seen[t.Account] = true
		err := d.checkQuota(ctx, t, size)
		switch {
		case err == nil:
		case errors.Is(err, ErrQuotaTooSmall):
			// Permanent: it wins over the others.
			return err
		case errors.Is(err, ErrMailboxFull):
			if full == nil {
				full = err
			}
		case other == nil:
			other = err
		}
	}
	if full != nil {
		return full
	}
	return other
}

func (d *Deliverer) checkQuota(ctx context.Context, t Target, size int64) error {
	u, err := d.opt.Store.Usage(ctx, t.Account)
	if err != nil {
		return fmt.Errorf("read the quota of %s: %w", t.Name, err)
	}
	lim := u.Limit
	if lim.Bytes > 0 && size > lim.Bytes {
		return fmt.Errorf("%w: %s has a quota of %d bytes, the message announced %d", ErrQuotaTooSmall, t.Name, lim.Bytes, size)
	}
	// Any message takes at least a byte: an account exactly at its limit
	// is full.
	if lim.Over(u.Bytes+max(size, 1), u.Messages+1) {
		return fmt.Errorf("%w: %s holds %d bytes in %d messages, its quota is %d bytes and %d messages (0: no limit), the message announced %d bytes",
			ErrMailboxFull, t.Name, u.Bytes, u.Messages, lim.Bytes, lim.Messages, size)
	}
	return nil
}
