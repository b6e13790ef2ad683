package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/store"
)

// quotaMsg is a message of exactly n octets (n >= 64), CRLF throughout.
func quotaMsg(subject string, n int) string {
	head := "Subject: " + subject + "\r\n\r\n"
	return head + strings.Repeat("q", n-len(head)-2) + "\r\n"
}

// lf is raw with LF line ends, for testServer.deliver, which makes them
// CRLF.
func lf(raw string) string { return strings.ReplaceAll(raw, "\r\n", "\n") }

// TestQuotaCommands: the capabilities, GETQUOTA, GETQUOTAROOT and SETQUOTA
// with and without a quota (RFC 9208 §4.1).
func TestQuotaCommands(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", lf(quotaMsg("one", 3000)))
	c := ts.login("alice@example.org")
	caps := strings.Join(c.ok("a0 CAPABILITY"), " ")
	for _, want := range []string{" QUOTA ", " QUOTA=RES-STORAGE ", " QUOTA=RES-MESSAGE "} {
		if !strings.Contains(caps+" ", want) {
			t.Errorf("capability %q missing: %s", want, caps)
		}
	}
	if strings.Contains(caps, "QUOTASET") {
		t.Error("QUOTASET advertised, but SETQUOTA is refused")
	}
	// No limit: no quota root.
	c.expect("a1 GETQUOTAROOT INBOX", "* QUOTAROOT INBOX", "a1 OK GETQUOTAROOT completed")
	c.expect(`a2 GETQUOTA ""`, "a2 NO [NONEXISTENT] No such quota root")
	c.expect(`a3 SETQUOTA "" (STORAGE 512)`, "a3 NO [NOPERM] Quotas are set by the server's administrator")
	c.expect(`a4 SETQUOTA "" (STORAGE`, "a4 BAD …")

	if err := ts.st.SetQuota(context.Background(), acct, store.Quota{Bytes: 10 << 10, Messages: store.QuotaDefault}); err != nil {
		t.Fatal(err)
	}
	c.expect("b1 GETQUOTAROOT INBOX", `* QUOTAROOT INBOX ""`, `* QUOTA "" (STORAGE 3 10)`, "b1 OK GETQUOTAROOT completed")
	c.expect("b2 GETQUOTAROOT Archive", `* QUOTAROOT Archive ""`, `* QUOTA "" (STORAGE 3 10)`, "b2 OK GETQUOTAROOT completed")
	c.expect(`b3 GETQUOTA ""`, `* QUOTA "" (STORAGE 3 10)`, "b3 OK GETQUOTA completed")
	c.expect(`b4 GETQUOTA "user.alice"`, "b4 NO [NONEXISTENT] No such quota root")
	c.expect("b5 GETQUOTAROOT Nosuch", "b5 NO [NONEXISTENT] No such mailbox")
	c.expect(`b6 SETQUOTA "" (STORAGE 99999)`, "b6 NO [NOPERM] Quotas are set by the server's administrator")
	if err := ts.st.SetQuota(context.Background(), acct, store.Quota{Bytes: 10 << 10, Messages: 50}); err != nil {
		t.Fatal(err)
	}
	c.expect(`b7 GETQUOTA ""`, `* QUOTA "" (STORAGE 3 10 MESSAGE 1 50)`, "b7 OK GETQUOTA completed")
	if err := ts.st.SetQuota(context.Background(), acct, store.Quota{Bytes: 0, Messages: 50}); err != nil {
		t.Fatal(err)
	}
	c.expect(`b8 GETQUOTA ""`, `* QUOTA "" (MESSAGE 1 50)`, "b8 OK GETQUOTA completed")
	c.expect("b9 STATUS INBOX (MESSAGES SIZE DELETED DELETED-STORAGE)",
		"* STATUS INBOX (MESSAGES 1 DELETED 0 SIZE 3000 DELETED-STORAGE 0)", "b9 OK STATUS completed")

	// Before login, the commands do not exist.
	n := ts.dial()
	n.expect(`c1 GETQUOTA ""`, "c1 BAD Log in first")
	n.expect("c2 GETQUOTAROOT INBOX", "c2 BAD Log in first")
}

// quotaRE matches a QUOTA response with STORAGE and MESSAGE.
var quotaRE = regexp.MustCompile(`^\* QUOTA "" \(STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)\)$`)

// quotaStatusRE matches the STATUS of quotaCheck.
var quotaStatusRE = regexp.MustCompile(`^\* STATUS (\S+) \(MESSAGES (\d+) DELETED (\d+) SIZE (\d+) DELETED-STORAGE (\d+)\)$`)

// quotaView is what a client sees of the quota and the mailboxes.
type quotaView struct {
	storage, messages int64 // GETQUOTA usage
	size, count       int64 // sums of STATUS SIZE and MESSAGES
	deleted           map[string][2]int64
}

// quotaCheck reads GETQUOTA "" and the STATUS of every mailbox and checks
// that they agree with each other and with the store's counter.
func quotaCheck(t *testing.T, ts *testServer, c *client, acct store.AccountID) quotaView {
	t.Helper()
	var v quotaView
	lines := c.ok(`q1 GETQUOTA ""`)
	m := quotaRE.FindStringSubmatch(lines[0])
	if len(lines) != 1 || m == nil {
		t.Fatalf("GETQUOTA: %q", lines)
	}
	v.storage, _ = strconv.ParseInt(m[1], 10, 64)
	v.messages, _ = strconv.ParseInt(m[3], 10, 64)
	root := c.ok("q2 GETQUOTAROOT INBOX")
	if len(root) != 2 || root[0] != `* QUOTAROOT INBOX ""` || root[1] != lines[0] {
		t.Fatalf("GETQUOTAROOT: %q, GETQUOTA: %q", root, lines)
	}
	v.deleted = map[string][2]int64{}
	for _, l := range c.ok(`q3 LIST "" "*" RETURN (STATUS (MESSAGES DELETED SIZE DELETED-STORAGE))`) {
		if !strings.HasPrefix(l, "* STATUS ") {
			continue
		}
		m := quotaStatusRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("STATUS: %q", l)
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		del, _ := strconv.ParseInt(m[3], 10, 64)
		size, _ := strconv.ParseInt(m[4], 10, 64)
		delStorage, _ := strconv.ParseInt(m[5], 10, 64)
		v.count += n
		v.size += size
		v.deleted[m[1]] = [2]int64{del, delStorage}
	}
	if v.messages != v.count || v.storage != int64(kib(v.size)) {
		t.Fatalf("GETQUOTA says STORAGE %d MESSAGE %d; the mailboxes' STATUS say SIZE %d (%d KiB) in %d messages",
			v.storage, v.messages, v.size, kib(v.size), v.count)
	}
	u, err := ts.st.Usage(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bytes != v.size || u.Messages != v.count {
		t.Fatalf("store usage %d bytes in %d messages, IMAP sees %d in %d", u.Bytes, u.Messages, v.size, v.count)
	}
	return v
}

// TestQuotaConsistent: GETQUOTA, GETQUOTAROOT, STATUS SIZE, MESSAGES,
// DELETED and DELETED-STORAGE agree with each other and with the store
// after every operation that adds or removes mail, expunge and the
// retention purge included.
func TestQuotaConsistent(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	acct := ts.addUser("alice@example.org")
	if err := ts.st.SetQuota(ctx, acct, store.Quota{Bytes: 1 << 20, Messages: 1000}); err != nil {
		t.Fatal(err)
	}
	c := ts.login("alice@example.org")
	want := func(step string, storage, messages int64) quotaView {
		t.Helper()
		v := quotaCheck(t, ts, c, acct)
		if v.storage != storage || v.messages != messages {
			t.Fatalf("after %s: STORAGE %d MESSAGE %d, want %d and %d", step, v.storage, v.messages, storage, messages)
		}
		return v
	}
	want("nothing", 0, 0)
	ts.deliver(acct, "INBOX", lf(quotaMsg("delivered", 2048)))
	want("a delivery", 2, 1)
	m := quotaMsg("appended", 3000)
	c.ok(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s", len(m), m))
	want("APPEND", 5, 2) // 5048 bytes: 4.93 KiB, rounded up
	c.ok(fmt.Sprintf("a2 APPEND Archive {%d+}\r\n%s {%d+}\r\n%s", len(m), m, len(m), m))
	want("MULTIAPPEND", 11, 4)
	c.ok("a3 SELECT INBOX")
	c.ok("a4 COPY 1:2 Archive")
	want("COPY", 16, 6)
	c.ok("a5 MOVE 1 Drafts")
	want("MOVE", 16, 6)
	c.ok("a6 MOVE 1 INBOX")
	want("MOVE into the same mailbox", 16, 6)
	c.ok(`a7 STORE 1 +FLAGS (\Deleted)`)
	v := want("STORE", 16, 6)
	if v.deleted["INBOX"] != [2]int64{1, 3} {
		t.Fatalf("INBOX DELETED, DELETED-STORAGE: %v, want 1 message of 3 KiB", v.deleted["INBOX"])
	}
	c.ok("a8 EXPUNGE")
	v = want("EXPUNGE", 13, 5)
	if v.deleted["INBOX"] != [2]int64{0, 0} {
		t.Fatalf("INBOX DELETED, DELETED-STORAGE after EXPUNGE: %v", v.deleted["INBOX"])
	}
	c.ok("a9 SELECT Archive")
	c.ok(`b1 UID STORE 1:* +FLAGS.SILENT (\Deleted)`)
	c.ok("b2 UID EXPUNGE 1")
	want("UID EXPUNGE", 10, 4)
	c.ok("b3 CLOSE")
	want("CLOSE", 2, 1) // the rest of Archive (\Deleted) went with CLOSE
	c.ok(fmt.Sprintf("b4 APPEND Drafts {%d+}\r\n%s", len(m), m))
	c.ok("b5 CREATE Projects/2024")
	c.ok(fmt.Sprintf("b6 APPEND Projects/2024 {%d+}\r\n%s", len(m), m))
	want("APPEND to a new mailbox", 8, 3)
	c.ok("b7 DELETE Drafts")
	want("DELETE", 3, 1)
	c.ok(fmt.Sprintf("b8 APPEND INBOX {%d+}\r\n%s", len(m), m))
	c.ok("b9 RENAME INBOX Old")
	want("RENAME INBOX", 6, 2)
	c.ok("c1 DELETE Projects/2024")
	want("DELETE of a mailbox", 3, 1)
	// The retention purge removes expunged mail for good: nothing that
	// counts.
	if err := ts.st.Sweep(ctx, time.Now().Add(400*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want("the retention purge", 3, 1)
	if probs, err := ts.st.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}

// TestQuotaOverQuota: APPEND, MULTIAPPEND, CATENATE and COPY that would
// pass the quota get NO [OVERQUOTA] and store nothing; a synchronizing
// literal is refused before the client sends it; MOVE and EXPUNGE work
// over the quota.
func TestQuotaOverQuota(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	acct := ts.addUser("alice@example.org")
	uid := ts.deliver(acct, "INBOX", lf(quotaMsg("first", 3000)))
	if err := ts.st.SetQuota(ctx, acct, store.Quota{Bytes: 7000, Messages: store.QuotaDefault}); err != nil {
		t.Fatal(err)
	}
	c := ts.login("alice@example.org")
	big := quotaMsg("big", 5000)
	// A synchronizing literal: NO instead of the continuation request.
	c.send(fmt.Sprintf("a1 APPEND INBOX {%d}", len(big)))
	c.expectLine("a1 NO [OVERQUOTA] Quota exceeded")
	// A non-synchronizing one is read and refused; the session goes on.
	c.expect(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s", len(big), big), "a2 NO [OVERQUOTA] Quota exceeded")
	// MULTIAPPEND: all or nothing.
	small := quotaMsg("small", 2000)
	c.expect(fmt.Sprintf("a3 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s", len(small), small, len(small), small, len(small), small),
		"a3 NO [OVERQUOTA] Quota exceeded")
	c.expect("a4 STATUS INBOX (MESSAGES SIZE)", "* STATUS INBOX (MESSAGES 1 SIZE 3000)", "a4 OK STATUS completed")
	// CATENATE: its size is known only once stored.
	c.expect(fmt.Sprintf(`a5 APPEND INBOX CATENATE (URL "/INBOX/;UID=%d" TEXT {%d+}`+"\r\n%s)", uid, len(small), small),
		"a5 NO [OVERQUOTA] Quota exceeded")
	// A literal that fits as announced but not once its bare line feeds
	// became CRLF: the store refuses it.
	bare := "Subject: lf\n\n" + strings.Repeat("x\n", 1990)
	c.expect(fmt.Sprintf("a6 APPEND INBOX {%d+}\r\n%s", len(bare), bare), "a6 NO [OVERQUOTA] Quota exceeded")
	// What fits goes in, up to the limit exactly.
	exact := quotaMsg("exact", 4000)
	c.send(fmt.Sprintf("a7 APPEND Archive {%d}", len(exact)))
	c.expectLine("+ …")
	c.send(exact)
	c.expectLine("a7 OK [APPENDUID … 1] APPEND completed")
	c.expect(`a8 GETQUOTA ""`, `* QUOTA "" (STORAGE 7 7)`, "a8 OK GETQUOTA completed")
	c.ok("a9 SELECT INBOX")
	c.expect("b1 COPY 1 Drafts", "b1 NO [OVERQUOTA] Quota exceeded")
	c.expect("b2 STATUS Drafts (MESSAGES)", "* STATUS Drafts (MESSAGES 0)", "b2 OK STATUS completed")
	// MOVE does not add, and works at the limit.
	c.expect("b3 MOVE 1 Drafts", "* OK [COPYUID … 1 1] Moved", "* 1 EXPUNGE", "b3 OK MOVE completed")
	// Deleting frees room at once.
	c.ok("b4 SELECT Drafts")
	c.ok(`b5 STORE 1 +FLAGS.SILENT (\Deleted)`)
	c.ok("b6 EXPUNGE")
	c.expect(`b7 GETQUOTA ""`, `* QUOTA "" (STORAGE 4 7)`, "b7 OK GETQUOTA completed")
	c.ok(fmt.Sprintf("b8 APPEND INBOX {%d+}\r\n%s", len(small), small))
	// The message limit.
	if err := ts.st.SetQuota(ctx, acct, store.Quota{Bytes: 7000, Messages: 2}); err != nil {
		t.Fatal(err)
	}
	c.expect("b9 APPEND INBOX {5+}\r\nhello", "b9 NO [OVERQUOTA] Quota exceeded")
	if probs, err := ts.st.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("check: %+v %v", probs, err)
	}
}

// TestQuotaGoIMAPClient: go-imap v2's client reads the quota root, the
// QUOTA response and STATUS DELETED-STORAGE, and gets OVERQUOTA for an
// APPEND and a COPY over the quota.
func TestQuotaGoIMAPClient(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", lf(quotaMsg("one", 4096)), `\Deleted`)
	if err := ts.st.SetQuota(ctx, acct, store.Quota{Bytes: 10 << 10, Messages: 5}); err != nil {
		t.Fatal(err)
	}
	dial := func() *imapclient.Client {
		c, err := imapclient.DialStartTLS(ts.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login("alice@example.org", testPassword).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	if !c.Caps().Has(imap.CapQuota) || !slices.Contains(c.Caps().QuotaResourceTypes(), imap.QuotaResourceStorage) ||
		!slices.Contains(c.Caps().QuotaResourceTypes(), imap.QuotaResourceMessage) {
		t.Fatalf("capabilities: %v", c.Caps())
	}
	roots, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := map[imap.QuotaResourceType]imapclient.QuotaResourceData{
		imap.QuotaResourceStorage: {Usage: 4, Limit: 10},
		imap.QuotaResourceMessage: {Usage: 1, Limit: 5},
	}
	if len(roots) != 1 || roots[0].Root != "" || !maps.Equal(roots[0].Resources, want) {
		t.Fatalf("GETQUOTAROOT: %+v", roots)
	}
	q, err := c.GetQuota("").Wait()
	if err != nil || !maps.Equal(q.Resources, want) {
		t.Fatalf("GETQUOTA: %+v %v", q, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{Size: true, NumDeleted: true, DeletedStorage: true}).Wait()
	if err != nil || *st.Size != 4096 || *st.NumDeleted != 1 || *st.DeletedStorage != 4 {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
	text := quotaMsg("too big", 7<<10)
	app := c.Append("INBOX", int64(len(text)), nil)
	io.WriteString(app, text)
	app.Close()
	var ierr *imap.Error
	if _, err := app.Wait(); !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("APPEND over the quota: %v", err)
	}
	// The server refused the synchronizing literal before the client sent
	// it (RFC 9051 §7.5 allows a tagged NO instead of the continuation
	// request); go-imap's client closes its connection then.
	c = dial()
	text = quotaMsg("fits", 5<<10)
	app = c.Append("Archive", int64(len(text)), nil)
	io.WriteString(app, text)
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatalf("APPEND within the quota: %v", err)
	}
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Drafts").Wait(); !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("COPY over the quota: %v", err)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "Drafts").Wait(); err != nil {
		t.Fatalf("MOVE over the quota: %v", err)
	}
	if q, err := c.GetQuota("").Wait(); err != nil || q.Resources[imap.QuotaResourceStorage] != (imapclient.QuotaResourceData{Usage: 9, Limit: 10}) {
		t.Fatalf("GETQUOTA after MOVE: %+v %v", q, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaPythonImaplib runs testdata/imaplib_quota.py: Python's imaplib
// reads the quota, sees it follow an APPEND and an EXPUNGE, and gets
// OVERQUOTA.
func TestQuotaPythonImaplib(t *testing.T) {
	py := requireTool(t, "python3")
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", lf(quotaMsg("one", 2048)))
	if err := ts.st.SetQuota(context.Background(), acct, store.Quota{Bytes: 8 << 10, Messages: store.QuotaDefault}); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/imaplib_quota.py", host, port, "alice@example.org", testPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib quota client: %v\n%s", err, out)
	}
}
