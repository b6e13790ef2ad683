package message

import (
	"reflect"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	type A = Address
	tests := []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{"alice@example.org", []A{{Mailbox: "alice", Host: "example.org"}}},
		{"<alice@example.org>", []A{{Mailbox: "alice", Host: "example.org"}}},
		{"Alice <alice@example.org>", []A{{Name: "Alice", Mailbox: "alice", Host: "example.org"}}},
		{"John Q. Public <jqp@example.com>", []A{{Name: "John Q. Public", Mailbox: "jqp", Host: "example.com"}}},
		{`"Doe, John" <j@x.example>, k@y.example`, []A{
			{Name: "Doe, John", Mailbox: "j", Host: "x.example"}, {Mailbox: "k", Host: "y.example"}}},
		{`"quoted \"name\"" <a@b>`, []A{{Name: `quoted "name"`, Mailbox: "a", Host: "b"}}},
		{"a@b (Comment, with comma), c@d", []A{{Name: "Comment, with comma", Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
			[]A{{Name: "Pete", Mailbox: "pete", Host: "silly.test"}}},
		{"<@route1,@route2:user@host.example>", []A{{Adl: "@route1,@route2", Mailbox: "user", Host: "host.example"}}},
		{`"john doe"@example.org`, []A{{Mailbox: "john doe", Host: "example.org"}}},
		{"user@[192.0.2.1]", []A{{Mailbox: "user", Host: "[192.0.2.1]"}}},
		{"=?utf-8?q?J=C3=B6rg,_M.?= <j@x>", []A{{Name: "=?utf-8?q?J=C3=B6rg,_M.?=", Mailbox: "j", Host: "x"}}},
		// RFC 5322 §A.1.3 group examples.
		{"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", []A{
			{Mailbox: "A Group", IsGroupStart: true},
			{Name: "Ed Jones", Mailbox: "c", Host: "a.test"},
			{Mailbox: "joe", Host: "where.test"},
			{Name: "John", Mailbox: "jdoe", Host: "one.test"},
			{IsGroupEnd: true}}},
		{"Undisclosed recipients:;", []A{{Mailbox: "Undisclosed recipients", IsGroupStart: true}, {IsGroupEnd: true}}},
		{"undisclosed-recipients:", []A{{Mailbox: "undisclosed-recipients", IsGroupStart: true}, {IsGroupEnd: true}}},
		{"g: a@b; c@d", []A{{Mailbox: "g", IsGroupStart: true}, {Mailbox: "a", Host: "b"}, {IsGroupEnd: true},
			{Mailbox: "c", Host: "d"}}},
		// Malformed.
		{"John Doe john@example.org", []A{{Name: "John Doe", Mailbox: "john", Host: "example.org"}}},
		{"Alice <alice@example.org", []A{{Name: "Alice", Mailbox: "alice", Host: "example.org"}}},
		{"Alice <alice@example.org, b@c", []A{{Name: "Alice", Mailbox: "alice", Host: "example.org"}, {Mailbox: "b", Host: "c"}}},
		{"localonly", []A{{Mailbox: "localonly"}}},
		{"<>", nil},
		{",,, a@b ,,", []A{{Mailbox: "a", Host: "b"}}},
		{"a@b; c@d", []A{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"\"unterminated <a@b>", []A{{Mailbox: "unterminated <a@b>"}}},
		{"a@b >stray", []A{{Mailbox: "a", Host: "b"}}}, // junk after an address is dropped
		{"<a@b, c <d@e>", []A{{Mailbox: "a", Host: "b"}, {Name: "c", Mailbox: "d", Host: "e"}}},
		{"a@b\r\n\t(folded comment)", []A{{Name: "folded comment", Mailbox: "a", Host: "b"}}},
	}
	for _, tt := range tests {
		got := ParseAddressList(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

// TestParseAddressListComments: the display name taken from a comment
// (what Dovecot and Cyrus do for RFC 5322 §3.4 addresses without a
// phrase), comments dropped from the address itself (§3.2.2), and the
// obsolete forms of §4.4.
func TestParseAddressListComments(t *testing.T) {
	type A = Address
	tests := []struct {
		in   string
		want []Address
	}{
		// The name from a comment after a bare addr-spec.
		{"kim@example.net (Kim Lee)", []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		{"kim@example.net(Kim Lee)", []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		{"kim@example.net (Kim Lee), lou@example.com (Lou)", []A{
			{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}, {Name: "Lou", Mailbox: "lou", Host: "example.com"}}},
		// Nested comments keep their parentheses; quoted-pairs are
		// unquoted.
		{"kim@example.net (Kim (the boss) Lee)", []A{{Name: "Kim (the boss) Lee", Mailbox: "kim", Host: "example.net"}}},
		{`kim@example.net (Kim \(K\) \\ Lee)`, []A{{Name: `Kim (K) \ Lee`, Mailbox: "kim", Host: "example.net"}}},
		// Encoded words stay encoded, like those of a phrase.
		{"jo@example.de (=?UTF-8?Q?J=C3=B6rg?=)", []A{{Name: "=?UTF-8?Q?J=C3=B6rg?=", Mailbox: "jo", Host: "example.de"}}},
		// Folding and whitespace runs.
		{"kim@example.net\r\n (Kim\r\n\t  Lee )", []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		// Several comments: the last that is not blank.
		{"kim@example.net (first) (second)", []A{{Name: "second", Mailbox: "kim", Host: "example.net"}}},
		{"kim@example.net (first) ( )", []A{{Name: "first", Mailbox: "kim", Host: "example.net"}}},
		{"pete(his account)@silly.test(his host)", []A{{Name: "his host", Mailbox: "pete", Host: "silly.test"}}},
		{"pete(his account)@silly.test", []A{{Name: "his account", Mailbox: "pete", Host: "silly.test"}}},
		{"user-from (c1)@ (c2) domain.org", []A{{Name: "c2", Mailbox: "user-from", Host: "domain.org"}}},
		// A comment before the local part is not a name.
		{"(not a name) kim@example.net", []A{{Mailbox: "kim", Host: "example.net"}}},
		// A phrase wins over a comment.
		{"Kim Lee <kim@example.net> (comment)", []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		{`"Kim Lee" (c) <kim@example.net>`, []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		{"Kim Lee kim@example.net (comment)", []A{{Name: "Kim Lee", Mailbox: "kim", Host: "example.net"}}},
		// Angle brackets: comments inside are dropped, and no comment
		// names the address.
		{"<user-from (comment)@ (comment) domain.org>", []A{{Mailbox: "user-from", Host: "domain.org"}}},
		{"<kim@example.net> (Kim)", []A{{Mailbox: "kim", Host: "example.net"}}},
		{"<kim(a>b)@example.net>, c@d", []A{{Mailbox: "kim", Host: "example.net"}, {Mailbox: "c", Host: "d"}}},
		// Quoted local parts.
		{`"kim lee"@example.net (Kim)`, []A{{Name: "Kim", Mailbox: "kim lee", Host: "example.net"}}},
		{`"a@b"@example.net`, []A{{Mailbox: "a@b", Host: "example.net"}}},
		{`<"kim (not a comment)"@example.net>`, []A{{Mailbox: "kim (not a comment)", Host: "example.net"}}},
		// RFC 5322 §4.4: CFWS around the dots of obs-local-part and
		// obs-domain.
		{"john . doe @ example . org", []A{{Mailbox: "john.doe", Host: "example.org"}}},
		{"john (x). doe@example. (y) org (John Doe)", []A{{Name: "John Doe", Mailbox: "john.doe", Host: "example.org"}}},
		{`"Dr." kim@example.net`, []A{{Name: "Dr.", Mailbox: "kim", Host: "example.net"}}},
		{"< john . doe @ example . org >", []A{{Mailbox: "john.doe", Host: "example.org"}}},
		// obs-route, with CFWS and empty list elements.
		{"<@a.example,@b.example:kim@example.net>", []A{{Adl: "@a.example,@b.example", Mailbox: "kim", Host: "example.net"}}},
		{"Kim < @a.example (relay) , ,@b.example : kim@example.net>", []A{
			{Name: "Kim", Adl: "@a.example,@b.example", Mailbox: "kim", Host: "example.net"}}},
		// Missing domain.
		{"kim@ (Kim)", []A{{Name: "Kim", Mailbox: "kim"}}},
		{"<kim>", []A{{Mailbox: "kim"}}},
		{"kim (Kim Lee)", []A{{Name: "Kim Lee", Mailbox: "kim"}}},
		// Groups, with comment names among the members.
		{"team: kim@example.net (Kim), lou@example.com;, solo@example.org (Solo)", []A{
			{Mailbox: "team", IsGroupStart: true},
			{Name: "Kim", Mailbox: "kim", Host: "example.net"},
			{Mailbox: "lou", Host: "example.com"},
			{IsGroupEnd: true},
			{Name: "Solo", Mailbox: "solo", Host: "example.org"}}},
		{"team (the team) :;", []A{{Mailbox: "team", IsGroupStart: true}, {IsGroupEnd: true}}},
		{"team:(nobody);", []A{{Mailbox: "team", IsGroupStart: true}, {IsGroupEnd: true}}},
	}
	for _, tt := range tests {
		got := ParseAddressList(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}
