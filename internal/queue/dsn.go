package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// finish records an attempt: each recipient's outcome, the next attempt
// or the end of retrying, and the reports owed to the sender; an entry
// with nothing left to deliver or report is removed. It runs also when
// the queue is stopping, so that what was delivered is recorded.
func (q *Queue) finish(ctx context.Context, a *attempt) {
	defer func() {
		q.mu.Lock()
		q.active--
		q.mu.Unlock()
		q.Kick() // room for more
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	e := &a.entry
	now := q.now()
	noReports := e.From == "" || e.Account == 0
	attempted := false
	var lastTemp string
	var counts [4]int
	for i := range e.Recipients {
		o := a.out[i]
		r := &e.Recipients[i]
		if !o.set || r.State != store.RcptPending {
			continue
		}
		attempted = true
		r.Status, r.Diagnostic, r.Remote = o.status, o.diag, o.remote
		switch o.kind {
		case outDelivered:
			r.State, r.DSNDone, r.Updated = store.RcptDelivered, true, now
			counts[outDelivered]++
		case outPerm:
			r.State, r.DSNDone, r.Updated = store.RcptFailed, noReports, now
			counts[outPerm]++
		default:
			lastTemp = o.diag
			counts[outTemp]++
		}
	}
	if attempted {
		e.Attempts++
	}
	q.count("delivered", counts[outDelivered])
	q.count("failed", counts[outPerm])
	pending := 0
	for _, r := range e.Recipients {
		if r.State == store.RcptPending {
			pending++
		}
	}
	if pending > 0 && !attempted {
		// Nothing was tried (the queue is stopping): leave the entry as
		// it was; its lease ends at the next start.
		return
	}
	if pending > 0 && now.Sub(e.Created) >= q.opt.Lifetime {
		// Give up (RFC 5321 §4.5.4.1): the pending recipients fail with
		// their last temporary error.
		for i := range e.Recipients {
			r := &e.Recipients[i]
			if r.State == store.RcptPending {
				r.State, r.DSNDone, r.Updated = store.RcptFailed, noReports, now
				if r.Status == "" || !strings.HasPrefix(r.Status, "4.") {
					r.Status = "4.4.7" // RFC 3463: delivery time expired
				}
				r.Diagnostic = strings.TrimSpace("gave up after " + q.opt.Lifetime.String() + "; last error: " + r.Diagnostic)
			}
		}
		q.count("expired", pending)
		pending = 0
	} else {
		q.count("deferred", counts[outTemp])
	}
	if lastTemp != "" {
		e.LastError = lastTemp
	}
	// Reports: failures, then a delay notice. A report is delivered
	// before the entry records it as sent, so a crash in between sends
	// it twice rather than never.
	var failed []int
	for i, r := range e.Recipients {
		if r.State == store.RcptFailed && !r.DSNDone {
			failed = append(failed, i)
		}
	}
	if len(failed) > 0 {
		if err := q.report(ctx, e, failed, "failed"); err != nil {
			q.log.Error("delivery status notification failed", "queue_id", e.ID, "err", err)
		}
		for _, i := range failed {
			e.Recipients[i].DSNDone = true
		}
	}
	if pending > 0 && !e.DelayNotified && q.opt.DelayNotice > 0 && now.Sub(e.Created) >= q.opt.DelayNotice {
		if !noReports {
			var delayed []int
			for i, r := range e.Recipients {
				if r.State == store.RcptPending {
					delayed = append(delayed, i)
				}
			}
			if err := q.report(ctx, e, delayed, "delayed"); err != nil {
				q.log.Error("delay notification failed", "queue_id", e.ID, "err", err)
			}
		}
		e.DelayNotified = true
	}
	if pending == 0 {
		if err := q.opt.Store.DeleteQueueEntry(ctx, e.ID); err == nil {
			q.size.Add(-1)
		} else if !errors.Is(err, store.ErrNotFound) {
			q.log.Error("remove finished queue entry", "queue_id", e.ID, "err", err)
		}
		q.log.Info("queue entry done", "queue_id", e.ID, "delivered", counts[outDelivered], "attempts", e.Attempts)
		return
	}
	e.NextAttempt = now.Add(q.retryAfter(e.Attempts))
	if err := q.opt.Store.UpdateQueueEntry(ctx, e); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return // dropped meanwhile
		}
		q.log.Error("record delivery attempt", "queue_id", e.ID, "err", err)
		return
	}
	q.log.Info("delivery deferred", "queue_id", e.ID, "pending", pending, "attempts", e.Attempts,
		"next_attempt", e.NextAttempt, "last_error", e.LastError)
}

// report delivers a delivery status notification (RFC 3464) about the
// recipients idx of e into the sender's INBOX: action "failed" or
// "delayed". It comes from the null sender, so it is never bounced (RFC
// 3464 §2, RFC 5321 §4.5.5).
func (q *Queue) report(ctx context.Context, e *store.QueueEntry, idx []int, action string) error {
	if e.Account == 0 || e.From == "" || len(idx) == 0 {
		return nil
	}
	acct, err := q.opt.Store.AccountByID(ctx, e.Account)
	if err != nil {
		return fmt.Errorf("sender account %d: %w", e.Account, err)
	}
	var hdr []byte
	if body, err := q.opt.Store.OpenBody(ctx, e.BlobID); err == nil {
		h, _ := message.ReadHeader(io.NewSectionReader(body, 0, body.Size()), 64<<10)
		body.Close()
		hdr = h.AppendFields(nil, nil, true)
	}
	msg := q.buildDSN(e, idx, action, hdr)
	res, err := q.opt.Local.Deliver(ctx, &delivery.Envelope{
		From: "",
		Recipients: []*delivery.Recipient{{Address: acct.Name, Via: delivery.ViaAccount,
			Targets: []delivery.Target{{Account: acct.ID, Name: acct.Name}}}},
		Protocol: "local",
		ID:       fmt.Sprintf("dsn-%d", e.ID),
	}, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	if err := res.Errs[0]; err != nil {
		return err
	}
	q.log.Info("delivery status notification", "queue_id", e.ID, "action", action, "account", acct.Name, "rcpts", len(idx))
	return nil
}

// buildDSN writes the report: multipart/report with a human part, the
// message/delivery-status part (RFC 3464 §2) and the original header
// (text/rfc822-headers, RFC 6522 §4). With SMTPUTF8 addresses the
// machine parts are message/global-delivery-status and
// message/global-headers (RFC 6533).
func (q *Queue) buildDSN(e *store.QueueEntry, idx []int, action string, origHeader []byte) []byte {
	now := q.now()
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := "=_dsn_" + hex.EncodeToString(rnd[:])
	utf8 := e.SMTPUTF8
	var b strings.Builder
	subject := "Undelivered mail returned to sender"
	if action == "delayed" {
		subject = "Delayed mail (still being retried)"
	}
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", q.opt.Hostname)
	fmt.Fprintf(&b, "To: <%s>\r\n", e.From)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.dsn@%s>\r\n", hex.EncodeToString(rnd[:8]), q.opt.Hostname)
	// RFC 3834 §5: an automatic reply.
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	b.WriteString("This is a MIME-encapsulated delivery status notification.\r\n")

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	if action == "delayed" {
		fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\nYour message could not be delivered yet to the recipients below.\r\n", q.opt.Hostname)
		fmt.Fprintf(&b, "It will be retried until %s; you need not send it again.\r\n\r\n", e.Created.Add(q.opt.Lifetime).Format(time.RFC1123Z))
	} else {
		fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\nYour message could not be delivered to the recipients below.\r\n\r\n", q.opt.Hostname)
	}
	for _, i := range idx {
		r := e.Recipients[i]
		fmt.Fprintf(&b, "<%s>: %s\r\n", r.Address, oneLine(r.Diagnostic))
	}

	ct, hct := "message/delivery-status", "text/rfc822-headers"
	if utf8 {
		ct, hct = "message/global-delivery-status", "message/global-headers"
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", boundary, ct)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", q.opt.Hostname)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", e.Created.Format(time.RFC1123Z))
	for _, i := range idx {
		r := e.Recipients[i]
		typ := "rfc822"
		if utf8 {
			typ = "utf-8"
		}
		fmt.Fprintf(&b, "\r\nFinal-Recipient: %s; %s\r\n", typ, r.Address)
		fmt.Fprintf(&b, "Action: %s\r\n", action)
		status := r.Status
		if status == "" {
			status = "4.0.0"
		}
		if action == "failed" && strings.HasPrefix(status, "2.") {
			status = "5.0.0"
		}
		fmt.Fprintf(&b, "Status: %s\r\n", status)
		if r.Remote != "" {
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", r.Remote)
		}
		if r.Diagnostic != "" {
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", oneLine(r.Diagnostic))
		}
		if !r.Updated.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", r.Updated.Format(time.RFC1123Z))
		}
		if action == "delayed" {
			fmt.Fprintf(&b, "Will-Retry-Until: %s\r\n", e.Created.Add(q.opt.Lifetime).Format(time.RFC1123Z))
		}
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", boundary, hct)
	b.Write(bytes.TrimRight(origHeader, "\r\n"))
	fmt.Fprintf(&b, "\r\n\r\n--%s--\r\n", boundary)
	return []byte(b.String())
}

// oneLine makes s fit on one header line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}
