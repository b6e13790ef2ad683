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
		{"a@b (Comment, with comma), c@d", []A{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
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
		{"a@b\r\n\t(folded comment)", []A{{Mailbox: "a", Host: "b"}}},
	}
	for _, tt := range tests {
		got := ParseAddressList(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}
