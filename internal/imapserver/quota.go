package imapserver

import (
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// QUOTA (RFC 9208). An account has one quota root, "" (RFC 9208 §3.1:
// the root names a set of mailboxes; here, all of them), whose resources
// are STORAGE (§5.1: the sum of the sizes of the messages in every
// mailbox, reported in units of 1024 octets) and MESSAGE (§5.2: their
// number). The store keeps the usage and the limits (store/quota.go); a
// resource without a limit is not reported, and an account without any
// limit has no quota root: GETQUOTAROOT names none and GETQUOTA "" is
// NONEXISTENT, since a QUOTA response must list at least one resource
// (§7). SETQUOTA is not offered: the administrator sets quotas
// (`postfach user quota`), and QUOTASET is not advertised (§4.1.3).

// quotaCapabilities are the capabilities of this file (RFC 9208 §3.2,
// §5.1, §5.2). RES-STORAGE needs STATUS DELETED-STORAGE and RES-MESSAGE
// STATUS DELETED, which writeStatus answers.
const quotaCapabilities = " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"

// quotaRoot is the name of the account's one quota root.
const quotaRoot = ""

// kib is a size in units of 1024 octets, rounded up, as STORAGE and
// DELETED-STORAGE report it (RFC 9208 §5.1, §4.1.4): a mailbox that
// holds anything does not show as empty, and a usage within its limit in
// octets stays within it in KiB.
func kib(n int64) uint64 {
	if n <= 0 {
		return 0
	}
	return uint64(n+1023) / 1024
}

// hasQuota reports whether the account has a quota root at all.
func hasQuota(u *store.Usage) bool {
	return u.Limit.Bytes > 0 || u.Limit.Messages > 0
}

// writeQuota writes "* QUOTA "" (resource usage limit ...)" (RFC 9208
// §4.2.1).
func (s *session) writeQuota(u *store.Usage) {
	e := s.enc
	e.Untagged().Atom("QUOTA").String(quotaRoot).BeginList()
	if u.Limit.Bytes > 0 {
		e.Atom("STORAGE").Number64(kib(u.Bytes)).Number64(kib(u.Limit.Bytes))
	}
	if u.Limit.Messages > 0 {
		e.Atom("MESSAGE").Number64(uint64(u.Messages)).Number64(uint64(u.Limit.Messages))
	}
	e.EndList().End()
}

// cmdGetQuota: GETQUOTA (RFC 9208 §4.1.1).
func (s *session) cmdGetQuota(cmd imap.Command) error {
	c := cmd.(*imap.GetQuota)
	u, err := s.srv.opt.Store.Usage(s.ctx, s.user.Account)
	if err != nil {
		return err
	}
	if c.Root != quotaRoot || !hasQuota(u) {
		return no("NONEXISTENT", "No such quota root")
	}
	s.writeQuota(u)
	return nil
}

// cmdGetQuotaRoot: GETQUOTAROOT (RFC 9208 §4.1.2): the roots of a
// mailbox, each followed by its QUOTA response.
func (s *session) cmdGetQuotaRoot(cmd imap.Command) error {
	c := cmd.(*imap.GetQuotaRoot)
	mb, err := s.lookupMailbox(c.Mailbox, "")
	if err != nil {
		return err
	}
	u, err := s.srv.opt.Store.Usage(s.ctx, s.user.Account)
	if err != nil {
		return err
	}
	e := s.enc
	e.Untagged().Atom("QUOTAROOT").Mailbox(mb.Name)
	if hasQuota(u) {
		e.String(quotaRoot)
	}
	e.End()
	if hasQuota(u) {
		s.writeQuota(u)
	}
	return nil
}

// cmdSetQuota: SETQUOTA (RFC 9208 §4.1.3) is for administrators; users
// get NO.
func (s *session) cmdSetQuota(cmd imap.Command) error {
	return no("NOPERM", "Quotas are set by the server's administrator")
}

// appendQuota refuses, before its data is read, an APPEND whose
// announced literals alone take the account over its quota (announced
// is their total so far): the client is not made to send what would be
// refused. The store checks again on the stored sizes.
type appendQuota struct {
	usage     *store.Usage
	announced int64
	n         int64
}

// refuse reports whether one more message of size bytes cannot fit.
func (q *appendQuota) refuse(s *session, size int64) (bool, error) {
	if q.usage == nil {
		u, err := s.srv.opt.Store.Usage(s.ctx, s.user.Account)
		if err != nil {
			return false, err
		}
		q.usage = u
	}
	q.announced += size
	q.n++
	return q.usage.Limit.Over(q.usage.Bytes+q.announced, q.usage.Messages+q.n), nil
}
