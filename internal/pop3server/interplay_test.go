package pop3server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// The POP3/IMAP rules of issue 5, one test each. The IMAP side is observed
// through the store: flags, mailbox contents and change events.

// waitEvent waits for an EventMessages of mailbox mb in sub.
func waitEvent(t *testing.T, sub store.Subscription, mb store.MailboxID) store.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case <-sub.C():
			for _, ev := range sub.Drain() {
				if ev.Kind == store.EventMessages && ev.Mailbox == mb {
					return ev
				}
			}
		case <-timeout:
			t.Fatal("no change event")
		}
	}
}

// TestRetrMarksSeen: RETR sets \Seen, and an IMAP session learns of it
// from a change event while the POP3 session goes on.
func TestRetrMarksSeen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.deliver(msgA)
	other := e.deliver(msgB)
	sub := e.st.Subscribe(e.acct.ID)
	defer sub.Close()
	c := e.login(testUser)
	c.cmd("RETR 1", "+OK")
	c.multiRaw()
	ev := waitEvent(t, sub, e.inbox) // before QUIT: "at once"
	cs, err := e.st.Changes(context.Background(), e.acct.ID, e.inbox, ev.ModSeq-1)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Changed) != 1 || cs.Changed[0].UID != uid || !cs.Changed[0].Flags.Has(mail.FlagSeen) {
		t.Errorf("changes seen by IMAP: %+v", cs.Changed)
	}
	c.cmd("NOOP", "+OK")
	c.cmd("QUIT", "+OK")
	if !e.message(uid).Flags.Has(mail.FlagSeen) {
		t.Error("RETR did not set \\Seen")
	}
	if e.message(other).Flags.Has(mail.FlagSeen) {
		t.Error("a message not retrieved is \\Seen")
	}
}

// TestTopDoesNotMarkSeen: TOP leaves \Seen alone.
func TestTopDoesNotMarkSeen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uid := e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("TOP 1 5", "+OK")
	c.multiRaw()
	c.cmd("TOP 1 0", "+OK")
	c.multiRaw()
	c.cmd("QUIT", "+OK")
	if e.message(uid).Flags.Has(mail.FlagSeen) {
		t.Error("TOP set \\Seen")
	}
}

// TestMarkSeenOff: with mark_seen off (server-wide or per account) RETR
// leaves the flags alone.
func TestMarkSeenOff(t *testing.T) {
	t.Parallel()
	for _, perAccount := range []bool{false, true} {
		t.Run(fmt.Sprint("perAccount=", perAccount), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{opts: func(o *Options) { o.MarkSeen = perAccount }})
			if perAccount {
				e.setting("pop3.mark_seen", "false")
			}
			uid := e.deliver(msgA)
			c := e.login(testUser)
			c.cmd("RETR 1", "+OK")
			c.multiRaw()
			c.cmd("QUIT", "+OK")
			if e.message(uid).Flags.Has(mail.FlagSeen) {
				t.Error("RETR set \\Seen with mark_seen off")
			}
		})
	}
}

// TestHideDeleted: messages an IMAP client flagged \Deleted are not
// offered; with hide_deleted off they are.
func TestHideDeleted(t *testing.T) {
	t.Parallel()
	for _, hide := range []bool{true, false} {
		t.Run(fmt.Sprint("hide=", hide), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{opts: func(o *Options) { o.HideDeleted = hide }})
			e.deliver(msgA)
			e.deliver(msgB, mail.FlagDeleted)
			e.deliver(msgC)
			c := e.login(testUser)
			want := "+OK 2 "
			if !hide {
				want = "+OK 3 "
			}
			c.cmd("STAT", want)
			c.cmd("QUIT", "+OK")
		})
	}
}

// TestSnapshot: mail that arrives during a session appears in the next
// one; message numbers stay fixed.
func TestSnapshot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("STAT", "+OK 1 ")
	e.deliver(msgB)
	c.cmd("STAT", "+OK 1 ")
	c.cmd("LIST 2", "-ERR No such message")
	c.cmd("UIDL", "+OK")
	if n := len(c.multi()); n != 1 {
		t.Errorf("UIDL lists %d messages", n)
	}
	c.cmd("QUIT", "+OK")
	c = e.login(testUser)
	c.cmd("STAT", "+OK 2 ")
	c.cmd("QUIT", "+OK")
}

// TestIMAPWorksDuringSession: while a POP3 session holds the maildrop,
// other clients change flags, deliver and expunge in INBOX.
func TestIMAPWorksDuringSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u1 := e.deliver(msgA)
	u2 := e.deliver(msgB)
	c := e.login(testUser)
	ctx := context.Background()
	if _, err := e.st.StoreFlags(ctx, e.acct.ID, e.inbox, store.StoreFlagsRequest{UIDs: mail.NewUIDSet(u1), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	u3 := e.deliver(msgC)
	if _, err := e.st.Expunge(ctx, e.acct.ID, e.inbox, mail.NewUIDSet(u3), false); err != nil {
		t.Fatal(err)
	}
	c.cmd("RETR 2", "+OK")
	c.multiRaw()
	c.cmd("QUIT", "+OK")
	if f := e.message(u1).Flags; !f.Has(mail.FlagFlagged) {
		t.Errorf("flags of message 1: %v", f)
	}
	if f := e.message(u2).Flags; !f.Has(mail.FlagSeen) {
		t.Errorf("flags of message 2: %v", f)
	}
}

// TestExpungedDuringSession: a message IMAP expunges during the session
// is reported as removed; the session and its UPDATE go on.
func TestExpungedDuringSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.deliver(msgA)
	u2 := e.deliver(msgB)
	e.deliver(msgC)
	c := e.login(testUser)
	c.cmd("STAT", "+OK 3 ")
	if _, err := e.st.Expunge(context.Background(), e.acct.ID, e.inbox, mail.NewUIDSet(u2), false); err != nil {
		t.Fatal(err)
	}
	// The event arrives after the commit; give it a moment to be seen.
	deadline := time.Now().Add(time.Minute)
	for {
		c.send("RETR 2")
		l := c.line()
		if l == "-ERR Message 2 was removed by another client" {
			break
		}
		if !strings.HasPrefix(l, "+OK") || time.Now().After(deadline) {
			t.Fatalf("RETR 2: %q", l)
		}
		c.multiRaw()
		time.Sleep(10 * time.Millisecond)
	}
	c.cmd("TOP 2 0", "-ERR Message 2 was removed")
	c.cmd("LIST 2", "-ERR Message 2 was removed")
	c.cmd("DELE 2", "-ERR Message 2 was removed")
	c.cmd("STAT", fmt.Sprintf("+OK 2 %d", len(crlf(msgA))+len(crlf(msgC))))
	c.cmd("LIST", "+OK 2 messages")
	if got := c.multi(); len(got) != 2 || !strings.HasPrefix(got[0], "1 ") || !strings.HasPrefix(got[1], "3 ") {
		t.Errorf("LIST = %q", got)
	}
	c.cmd("RSET", "+OK Maildrop has 2 messages")
	c.cmd("DELE 3", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	if msgs := e.messages(e.inbox); len(msgs) != 1 {
		t.Errorf("INBOX: %+v", msgs)
	}
}

// TestDeleteExpunge: in expunge mode DELE removes the message from INBOX
// at QUIT, through the store's expunge (IMAP sees it vanish).
func TestDeleteExpunge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u1 := e.deliver(msgA)
	e.deliver(msgB)
	before := e.mailbox("INBOX").HighestModSeq
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	if e.message(u1) == nil {
		t.Fatal("expunged before QUIT")
	}
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	cs, err := e.st.Changes(context.Background(), e.acct.ID, e.inbox, before)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cs.Vanished, mail.NewUIDSet(u1)) {
		t.Errorf("vanished = %v, want %d", cs.Vanished, u1)
	}
	if n := len(e.messages(e.mailbox("Trash").ID)); n != 0 {
		t.Errorf("%d messages in Trash", n)
	}
}

// TestDeleteTrash: in trash mode (here per account) DELE moves the
// message to the Trash mailbox.
func TestDeleteTrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.setting("pop3.delete", "trash")
	u1 := e.deliver(msgA)
	e.deliver(msgB)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	if e.message(u1) != nil {
		t.Error("still in INBOX")
	}
	trash := e.messages(e.mailbox("Trash").ID)
	if len(trash) != 1 || trash[0].Size != int64(len(crlf(msgA))) {
		t.Errorf("Trash: %+v", trash)
	}
}

// TestDeleteTrashWithoutTrash: an account without a \Trash mailbox gets
// the message expunged.
func TestDeleteTrashWithoutTrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Delete = DeleteTrash }})
	ctx := context.Background()
	if err := e.st.SetSpecialUse(ctx, e.acct.ID, e.mailbox("Trash").ID, nil); err != nil {
		t.Fatal(err)
	}
	u1 := e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	if e.message(u1) != nil {
		t.Error("still in INBOX")
	}
	if n := len(e.messages(e.mailbox("Trash").ID)); n != 0 {
		t.Errorf("%d messages in the former Trash", n)
	}
	if !strings.Contains(e.logs.String(), "no \\\\Trash mailbox") {
		t.Error("fallback not logged")
	}
}

// TestDeleteHide: in hide mode the message stays in INBOX for IMAP and
// is not offered to POP3 again.
func TestDeleteHide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Delete = DeleteHide }})
	u1 := e.deliver(msgA)
	e.deliver(msgB)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK Bye (1 message deleted)")
	if e.message(u1) == nil {
		t.Fatal("hide mode removed the message from INBOX")
	}
	c = e.login(testUser)
	c.cmd("STAT", fmt.Sprintf("+OK 1 %d", len(crlf(msgB))))
	c.cmd("QUIT", "+OK")
	v, err := e.st.POP3View(context.Background(), e.acct.ID, "", e.inbox)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Hidden.Contains(u1) {
		t.Errorf("hidden set %v", v.Hidden)
	}
	// Switching back to expunge mode does not bring hidden mail back to
	// POP3.
	e.srv.opt.Delete = DeleteExpunge
	c = e.login(testUser)
	c.cmd("STAT", "+OK 1 ")
	c.cmd("QUIT", "+OK")
}

// TestAccountDeleteOverride: the account setting pop3.delete wins over
// the server's default.
func TestAccountDeleteOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Delete = DeleteExpunge }})
	e.setting("pop3.delete", "hide")
	u1 := e.deliver(msgA)
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK")
	if e.message(u1) == nil {
		t.Fatal("expunged despite pop3.delete=hide on the account")
	}
}

// TestDeviceViews: two devices that both delete from the server each get
// every message once; INBOX keeps everything for IMAP; a new device is
// offered everything; DELE in a view ignores pop3.delete.
func TestDeviceViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Delete = DeleteExpunge }})
	e.deliver(msgA)
	e.deliver(msgB)
	fetchAll := func(device string, want int) {
		t.Helper()
		c := e.login(testUser + "#" + device)
		c.cmd("STAT", fmt.Sprintf("+OK %d ", want))
		for i := 1; i <= want; i++ {
			c.cmd(fmt.Sprintf("RETR %d", i), "+OK")
			c.multiRaw()
			c.cmd(fmt.Sprintf("DELE %d", i), "+OK")
		}
		c.cmd("QUIT", fmt.Sprintf("+OK Bye (%d ", want))
	}
	fetchAll("office-pc", 2)
	fetchAll("laptop", 2)
	fetchAll("office-pc", 0)
	e.deliver(msgC)
	fetchAll("office-pc", 1)
	fetchAll("laptop", 1)
	fetchAll("Laptop", 0) // the same device
	if n := len(e.messages(e.inbox)); n != 3 {
		t.Errorf("INBOX has %d messages, want 3 (device DELE never expunges)", n)
	}
	fetchAll("tablet", 3) // a new device gets everything now in INBOX
	// The plain maildrop is unaffected by device views.
	c := e.login(testUser)
	c.cmd("STAT", "+OK 3 ")
	c.cmd("QUIT", "+OK")
	views, err := e.st.POP3Views(context.Background(), e.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range views {
		names = append(names, v.Device)
	}
	if !slices.Equal(names, []string{"laptop", "office-pc", "tablet"}) {
		t.Errorf("views: %q", names)
	}
}

// TestDeviceRegisteredAtLogin: a device shows in the views after its
// first login, before it deleted anything.
func TestDeviceRegisteredAtLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.login(testUser + "#scanner")
	c.cmd("QUIT", "+OK")
	views, err := e.st.POP3Views(context.Background(), e.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].Device != "scanner" {
		t.Errorf("views: %+v", views)
	}
}

// TestDeviceViewsOff: with device views off a "#DEVICE" login is refused
// with a clear [AUTH] error; per account too.
func TestDeviceViewsOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: func(o *Options) { o.DeviceViews = false }})
	c := e.dial()
	c.cmd("USER "+testUser+"#laptop", "+OK")
	if l := c.cmd("PASS "+testPassword, "-ERR [AUTH] "); !strings.Contains(l, "Per-device logins") {
		t.Errorf("refusal: %q", l)
	}
	c.cmd("AUTH PLAIN "+plainResp(testUser+"#laptop", testPassword), "-ERR [AUTH] Per-device")
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPassword, "+OK")
	c.cmd("QUIT", "+OK")
	// On for the server, off for this account.
	e.srv.opt.DeviceViews = true
	e.setting("pop3.device_views", "false")
	c = e.dial()
	c.cmd("USER "+testUser+"#laptop", "+OK")
	c.cmd("PASS "+testPassword, "-ERR [AUTH] Per-device")
}

// TestUIDLStable: UIDLs survive sessions, deletions of other messages and
// new deliveries; a stored POPUID (from a migration) is used as is.
func TestUIDLStable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	uv := e.mailbox("INBOX").UIDValidity
	u1 := e.deliver(msgA)
	e.deliverMsg(store.NewMessage{POPUID: "migrated-0001"}, msgB)
	e.deliverMsg(store.NewMessage{POPUID: "has space"}, msgB)                 // invalid: derived
	e.deliverMsg(store.NewMessage{POPUID: strings.Repeat("x", 71)}, msgB)     // too long: derived
	e.deliverMsg(store.NewMessage{POPUID: "migrated-0001"}, msgC)             // duplicate
	u6 := e.deliverMsg(store.NewMessage{POPUID: derivedUIDL(u1+6, uv)}, msgC) // equals the next one's derived UIDL
	u7 := e.deliver(msgC)
	uidls := func() []string {
		c := e.login(testUser)
		c.cmd("UIDL", "+OK")
		var out []string
		for _, l := range c.multi() {
			out = append(out, strings.Fields(l)[1])
		}
		c.cmd("QUIT", "+OK")
		return out
	}
	first := uidls()
	want := []string{
		derivedUIDL(u1, uv), "migrated-0001", derivedUIDL(u1+2, uv), derivedUIDL(u1+3, uv),
		derivedUIDL(u1+4, uv), derivedUIDL(u6+1, uv), derivedUIDL(u7, uv) + "-",
	}
	if !slices.Equal(first, want) {
		t.Fatalf("UIDLs = %q\nwant   %q", first, want)
	}
	seen := map[string]bool{}
	for _, u := range first {
		if seen[u] || !validUIDL(u) {
			t.Errorf("UIDL %q duplicate or invalid", u)
		}
		seen[u] = true
	}
	// Delete message 1 and deliver a new one: the others keep theirs.
	c := e.login(testUser)
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK")
	e.deliver(msgA)
	second := uidls()
	if !slices.Equal(second[:len(first)-1], first[1:]) {
		t.Errorf("UIDLs changed:\n%q\n%q", first[1:], second)
	}
}

func TestDerivedUIDL(t *testing.T) {
	for _, tt := range []struct {
		uid  mail.UID
		uv   uint32
		want string
	}{
		{1, 1, "0000000100000001"},
		{0xABCDEF01, 0x12345678, "ABCDEF0112345678"},
		{mail.MaxUID, ^uint32(0), "FFFFFFFFFFFFFFFF"},
	} {
		if got := derivedUIDL(tt.uid, tt.uv); got != tt.want {
			t.Errorf("derivedUIDL(%d, %d) = %q, want %q", tt.uid, tt.uv, got, tt.want)
		}
	}
	for s, ok := range map[string]bool{"": false, "a": true, "a b": false, "\x7f": false, strings.Repeat("~", 70): true, strings.Repeat("!", 71): false, "é": false} {
		if validUIDL(s) != ok {
			t.Errorf("validUIDL(%q) = %v", s, !ok)
		}
	}
}
