package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// UndeleteRequest says what postfach undelete lists or brings back: the
// retained expunged messages of an account (docs/backup.md, "Recovering
// deleted mail").
type UndeleteRequest struct {
	Account string `json:"account"`
	// Mailbox keeps the messages that left the mailbox of that name, or
	// a mailbox below it ("Work" also means "Work/2024"): the name it has
	// now, or the one it had when it lost them.
	Mailbox string `json:"mailbox,omitempty"`
	// Since keeps the messages expunged at or after it.
	Since time.Time `json:"since,omitzero"`
	// Match keeps the messages whose Subject, From or To contains it,
	// case-insensitively (RFC 2047 encoded words decoded).
	Match string `json:"match,omitempty"`
	// List only lists them.
	List bool `json:"list,omitempty"`
}

// DeletedMessage is one retained expunged message.
type DeletedMessage struct {
	// Mailbox is the name of the mailbox it left, as it was then; Gone
	// says that mailbox no longer exists.
	Mailbox  string    `json:"mailbox"`
	Gone     bool      `json:"gone,omitempty"`
	UID      mail.UID  `json:"uid"`
	Expunged time.Time `json:"expunged"`
	Date     time.Time `json:"date"` // internal date
	Size     int64     `json:"size"`
	Flags    []string  `json:"flags,omitempty"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	// Into and NewUID say where an undelete put it.
	Into   string   `json:"into,omitempty"`
	NewUID mail.UID `json:"new_uid,omitempty"`
}

// UndeleteResult reports an undelete.
type UndeleteResult struct {
	// Messages are the messages selected, by the time of their expunge.
	Messages []DeletedMessage `json:"messages,omitempty"`
	// Restored counts those brought back.
	Restored int `json:"restored"`
	// Created are the mailboxes made again.
	Created []string `json:"created,omitempty"`
}

// undeleteBatch bounds the messages one Undelete call brings back.
const undeleteBatch = 500

// Undelete lists the account's retained expunged messages that req
// selects and, unless req.List, brings them back into the mailbox they
// left (the same mailbox, even renamed; else one of its name, made again
// if needed) as new messages with their flags (not \Deleted) and dates.
// A message that the account still has (moved, copied, undeleted
// already) is not listed, so running it twice adds nothing.
func Undelete(ctx context.Context, st store.Store, req UndeleteRequest) (*UndeleteResult, error) {
	u, ok := st.(store.Undeleter)
	if !ok {
		return nil, errors.New("undelete: not supported by this store")
	}
	want := ""
	if req.Mailbox != "" {
		n, err := store.CanonicalMailboxName(req.Mailbox)
		if err != nil {
			return nil, fmt.Errorf("undelete: mailbox %q: %w", req.Mailbox, err)
		}
		want = n
	}
	acct, err := st.Account(ctx, req.Account)
	if err != nil {
		return nil, fmt.Errorf("undelete: account %s: %w", req.Account, err)
	}
	mbs, err := st.Mailboxes(ctx, acct.ID)
	if err != nil {
		return nil, fmt.Errorf("undelete: %w", err)
	}
	current := map[store.MailboxID]store.Mailbox{}
	for _, mb := range mbs {
		current[mb.ID] = mb
	}
	under := func(name string) bool {
		return want == "" || name == want || strings.HasPrefix(name, want+"/")
	}
	match := strings.ToLower(req.Match)
	// The newest expunge of each EMAILID: a message expunged, undeleted
	// and expunged again is one message.
	type picked struct {
		m   *store.ExpungedMessage
		out DeletedMessage
	}
	byEmail := map[string]*picked{}
	for m, err := range u.Deleted(ctx, acct.ID, req.Since) {
		if err != nil {
			return nil, fmt.Errorf("undelete: %w", err)
		}
		cur, exists := current[m.Mailbox]
		if !under(m.MailboxName) && !(exists && under(cur.Name)) {
			continue
		}
		d := describe(m)
		d.Gone = !exists || cur.NoSelect
		if match != "" && !strings.Contains(strings.ToLower(d.Subject), match) &&
			!strings.Contains(strings.ToLower(d.From), match) && !strings.Contains(strings.ToLower(d.To), match) {
			continue
		}
		if p := byEmail[m.EmailID]; p != nil && (p.m.Expunged.After(m.Expunged) ||
			p.m.Expunged.Equal(m.Expunged) && p.m.ModSeq >= m.ModSeq) {
			continue
		}
		byEmail[m.EmailID] = &picked{m: m, out: d}
	}
	sel := make([]*picked, 0, len(byEmail))
	for _, p := range byEmail {
		sel = append(sel, p)
	}
	sort.Slice(sel, func(i, j int) bool {
		a, b := sel[i].m, sel[j].m
		if !a.Expunged.Equal(b.Expunged) {
			return a.Expunged.Before(b.Expunged)
		}
		if a.Mailbox != b.Mailbox {
			return a.Mailbox < b.Mailbox
		}
		return a.UID < b.UID
	})
	res := &UndeleteResult{}
	if !req.List {
		// By the mailbox they left, in the order of their expunge.
		groups := map[store.MailboxID][]*picked{}
		var order []store.MailboxID
		for _, p := range sel {
			if groups[p.m.Mailbox] == nil {
				order = append(order, p.m.Mailbox)
			}
			groups[p.m.Mailbox] = append(groups[p.m.Mailbox], p)
		}
		for _, id := range order {
			g := groups[id]
			dest, created, err := undeleteTarget(ctx, st, acct.ID, id, g[len(g)-1].m.MailboxName)
			if err != nil {
				return res, fmt.Errorf("undelete: %w", err)
			}
			if created {
				res.Created = append(res.Created, dest.Name)
			}
			for len(g) > 0 {
				n := min(len(g), undeleteBatch)
				refs := make([]store.DeletedRef, n)
				at := map[store.DeletedRef]*picked{}
				for i, p := range g[:n] {
					refs[i] = store.DeletedRef{Mailbox: p.m.Mailbox, UID: p.m.UID}
					at[refs[i]] = p
				}
				r, err := u.Undelete(ctx, acct.ID, dest.ID, refs)
				if err != nil {
					return res, fmt.Errorf("undelete: %w", err)
				}
				for i, ref := range r.Refs {
					p := at[ref]
					p.out.Into, p.out.NewUID = dest.Name, r.UIDs[i]
				}
				res.Restored += len(r.UIDs)
				g = g[n:]
			}
		}
	}
	for _, p := range sel {
		res.Messages = append(res.Messages, p.out)
	}
	return res, nil
}

// undeleteTarget finds the mailbox that messages expunged from the
// mailbox id (named name then) go back into: that mailbox if it still
// holds messages, else the mailbox of its name, made (again) if there
// is none or only a \Noselect name.
func undeleteTarget(ctx context.Context, st store.Store, acct store.AccountID, id store.MailboxID, name string) (*store.Mailbox, bool, error) {
	if mb, err := st.MailboxByID(ctx, acct, id); err == nil && !mb.NoSelect {
		return mb, false, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	mb, err := st.Mailbox(ctx, acct, name)
	if err == nil && !mb.NoSelect {
		return mb, false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	mb, err = st.CreateMailboxWith(ctx, acct, name, store.CreateOptions{Parents: true, Subscribe: true})
	if errors.Is(err, store.ErrExists) {
		// Made meanwhile by a client.
		if mb, err = st.Mailbox(ctx, acct, name); err == nil && mb.NoSelect {
			err = fmt.Errorf("mailbox %q is a \\Noselect name", name)
		}
		return mb, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("make mailbox %q again: %w", name, err)
	}
	return mb, true, nil
}

// describe turns a retained message into what a person recognises it by.
func describe(m *store.ExpungedMessage) DeletedMessage {
	d := DeletedMessage{Mailbox: m.MailboxName, UID: m.UID, Expunged: m.Expunged, Date: m.InternalDate, Size: m.Size, Flags: m.Flags}
	if m.Summary != nil && m.Summary.Root.Envelope != nil {
		env := m.Summary.Root.Envelope
		d.Subject = message.DecodeHeaderValue(env.Subject)
		d.From = addressString(env.From)
		d.To = addressString(env.To)
	}
	return d
}

func addressString(as []message.Address) string {
	var parts []string
	for _, a := range as {
		if a.IsGroupStart || a.IsGroupEnd {
			continue
		}
		s := a.Mailbox
		if a.Host != "" {
			s += "@" + a.Host
		}
		if a.Name != "" {
			s = message.DecodeHeaderValue(a.Name) + " <" + s + ">"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
