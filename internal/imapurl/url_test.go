package imapurl

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
)

// TestParse: the URLs of RFC 5092, RFC 4467 and RFC 4469's examples and
// the forms clients send, with what Parse makes of them.
func TestParse(t *testing.T) {
	const tok = "91354a473744909de610943775f92038"
	tests := []struct {
		raw  string
		want URL
		rump string
	}{
		{"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:" + tok,
			URL{Form: Absolute, User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2",
				Spec: imap.Section{Part: []uint32{1, 2}}, Access: AccessSubmit, AccessUser: "fred", Mechanism: "internal", Token: tok},
			"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"},
		{"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred",
			URL{Form: Absolute, User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2",
				Spec: imap.Section{Part: []uint32{1, 2}}, Access: AccessSubmit, AccessUser: "fred"},
			"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"},
		{"IMAP://alice%40example.org;AUTH=*@[::1]:143/Lists%2FGo%20Nuts;UIDVALIDITY=385759045/;UID=7/;SECTION=HEADER.FIELDS%20(Subject)/;PARTIAL=0.1024;EXPIRE=2030-01-02T03:04:05Z;URLAUTH=user+bob%40example.org:INTERNAL:" + strings.ToUpper(tok),
			URL{Form: Absolute, User: "alice@example.org", HasAuth: true, Host: "::1", Port: "143", Mailbox: "Lists/Go Nuts",
				UIDValidity: 385759045, UID: 7, Section: "HEADER.FIELDS (Subject)", Spec: imap.Section{Text: imap.SectionHeaderFields, Fields: []string{"Subject"}},
				Partial: Partial{0, 1024}, HasPartial: true, Expire: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
				Access: AccessUser, AccessUser: "bob@example.org", Mechanism: "INTERNAL", Token: strings.ToUpper(tok)},
			"IMAP://alice%40example.org;AUTH=*@[::1]:143/Lists%2FGo%20Nuts;UIDVALIDITY=385759045/;UID=7/;SECTION=HEADER.FIELDS%20(Subject)/;PARTIAL=0.1024;EXPIRE=2030-01-02T03:04:05Z;URLAUTH=user+bob%40example.org"},
		{"imap://h.test/Sent/Archiv%C3%A9/;UID=1;urlauth=authuser",
			URL{Form: Absolute, Host: "h.test", Mailbox: "Sent/Archivé", UID: 1, Access: AccessAuthUser},
			"imap://h.test/Sent/Archiv%C3%A9/;UID=1;urlauth=authuser"},
		{"imap://;AUTH=GSSAPI@h.test/INBOX/;UID=1/;PARTIAL=5",
			URL{Form: Absolute, HasAuth: true, Host: "h.test", Mailbox: "INBOX", UID: 1, Partial: Partial{5, 0}, HasPartial: true}, ""},
		{"/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2",
			URL{Form: PathAbsolute, Mailbox: "INBOX", UIDValidity: 385759045, UID: 20, Section: "1.2", Spec: imap.Section{Part: []uint32{1, 2}}}, ""},
		{";UID=20/;SECTION=TEXT/;PARTIAL=4.2",
			URL{Form: Relative, UID: 20, Section: "TEXT", Spec: imap.Section{Text: imap.SectionTextBody}, Partial: Partial{4, 2}, HasPartial: true}, ""},
		{"imap://10.0.0.1/a%3Bb/;UID=4294967295",
			URL{Form: Absolute, Host: "10.0.0.1", Mailbox: "a;b", UID: 4294967295}, ""},
	}
	for _, tc := range tests {
		u, err := Parse(tc.raw)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.raw, err)
			continue
		}
		tc.want.Raw = tc.raw
		tc.want.rump = u.rump
		if !equalURL(u, &tc.want) {
			t.Errorf("Parse(%q):\n got %+v\nwant %+v", tc.raw, *u, tc.want)
		}
		if u.Rump() != tc.rump {
			t.Errorf("Parse(%q).Rump() = %q, want %q", tc.raw, u.Rump(), tc.rump)
		}
	}
}

func equalURL(a, b *URL) bool {
	return reflect.DeepEqual(a, b)
}

// TestParseRefused: what is not a URL of a message, or not of the
// grammar, is refused with a reason.
func TestParseRefused(t *testing.T) {
	tok := ":internal:91354a473744909de610943775f92038"
	for _, raw := range []string{
		"",
		"imap://h.test",                       // a server
		"imap://h.test/",                      // no mailbox
		"imap://h.test/INBOX",                 // a mailbox
		"imap://h.test/INBOX?SUBJECT%20x",     // a search
		"imap://h.test/INBOX;UIDVALIDITY=5",   // still a mailbox
		"imap://h.test/INBOX/;UID=0",          // nz-number
		"imap://h.test/INBOX/;UID=01",         // leading zero
		"imap://h.test/INBOX/;UID=-1",         // sign
		"imap://h.test/INBOX/;UID=+1",         // sign
		"imap://h.test/INBOX/;UID=4294967296", // too big
		"imap://h.test/INBOX;UID=1",           // missing "/"
		"imap://h.test/INBOX/;UIDVALIDITY=5/;UID=1",
		"imap://h.test/INBOX/;UID=1;SECTION=1",
		"imap://h.test/INBOX/;UID=1/;SECTION=1/;SECTION=2",
		"imap://h.test/INBOX/;UID=1/;SECTION=0",
		"imap://h.test/INBOX/;UID=1/;SECTION=1]<0.5>",
		"imap://h.test/INBOX/;UID=1/;PARTIAL=1.0",
		"imap://h.test/INBOX/;UID=1/;PARTIAL=-1",
		"imap://h.test/INBOX/;UID=1/;PARTIAL=",
		"imap://h.test/INBOX/;UID=1/",
		"imap://h.test/INBOX/;UID=1;FOO=2",
		"imap://h.test/INBOX/;UID=1;EXPIRE=2030-01-02T03:04:05Z",
		"imap://h.test/INBOX/;UID=1;EXPIRE=2030-01-02;URLAUTH=authuser",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser;EXPIRE=2030-01-02T03:04:05Z",
		"imap://h.test/INBOX/;UID=1;URLAUTH=nobody",
		"imap://h.test/INBOX/;UID=1;URLAUTH=user+",
		"imap://h.test/INBOX/;UID=1;URLAUTH=submit+a%zz",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser:internal",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser:internal:0123",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser:internal:0123456789abcdef0123456789abcdeg",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser::0123456789abcdef0123456789abcdef",
		"imap://h.test/INBOX/;UID=1;URLAUTH=authuser:in/ternal:0123456789abcdef0123456789abcdef",
		"/INBOX/;UID=1;URLAUTH=authuser" + tok,
		";UID=1;URLAUTH=authuser" + tok,
		"imap://a@b@h.test/INBOX/;UID=1",
		"imap://a;URLAUTH=x@h.test/INBOX/;UID=1",
		"imap://@h.test/INBOX/;UID=1",
		"imap://a@/INBOX/;UID=1",
		"imap://h.test:99999/INBOX/;UID=1",
		"imap://h.test:/INBOX/;UID=1",
		"imap://[::1/INBOX/;UID=1",
		"imap://[10.0.0.1]/INBOX/;UID=1",
		"imap://h test/INBOX/;UID=1",
		"imap://h.test/IN BOX/;UID=1",
		"imap://h.test/IN\x00BOX/;UID=1",
		"imap://h.test/Inb\xc3\xb6x/;UID=1",
		"imap://h.test/%ff/;UID=1",
		"imap://h.test/a%2/;UID=1",
		"imap://h.test/a\"b/;UID=1",
		"http://h.test/INBOX/;UID=1",
		"INBOX/;UID=1",
		"/;UID=1",
		";UID=1/;UIDVALIDITY=2",
		"imap://h.test/INBOX/;UID=1" + strings.Repeat("/;SECTION=1", 2000),
	} {
		u, err := Parse(raw)
		var e *Error
		if !errors.As(err, &e) || e.Reason == "" {
			t.Errorf("Parse(%q) = %+v, %v; want an *Error", raw, u, err)
		}
	}
}
