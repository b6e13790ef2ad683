package message

import (
	"reflect"
	"testing"
)

func TestBaseSubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"hello", "hello"},
		{"Re: hello", "hello"},
		{"RE: Re: re: hello", "hello"},
		{"Re:hello", "hello"},
		{"Re :hello", "hello"},
		{"Fwd: hello", "hello"},
		{"FW: hello", "hello"},
		{"fw [2]: hello", "hello"},
		{"Re[2]: hello", "hello"},
		{"[list] Re: hello", "hello"},
		{"[list] [tag] Re: Fwd: hello", "hello"},
		{"[list] hello", "hello"},
		{"[list]", "[list]"},
		{"[list]   ", "[list]"},
		{"hello (fwd)", "hello"},
		{"hello (FWD) (fwd)  ", "hello"},
		{"[fwd: hello]", "hello"},
		{"[Fwd: Re: hello (fwd)]", "hello"},
		{"Re: [fwd: Re: hi]", "hi"},
		{"Re: Re[3]: [PATCH] fix", "fix"},
		{"=?utf-8?q?Re:_caf=C3=A9?=", "café"},
		{"Re: =?ISO-8859-1?Q?Gr=FC=DFe?=", "Grüße"},
		{"Reply: hello", "Reply: hello"},
		{"re", "re"},
		{"  spaced\t\tout  ", "spaced out"},
		{"Re:  Re:   folded\r\n subject", "folded subject"},
		{"[a[b] hello", "[a[b] hello"},
		{"Re: [] x", "x"},
	}
	for _, tt := range tests {
		if got := BaseSubject(tt.in); got != tt.want {
			t.Errorf("BaseSubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSortKeys(t *testing.T) {
	tests := []struct {
		in               string
		display, mailbox string
	}{
		{"", "", ""},
		{"Alice <alice@example.org>", "Alice", "alice"},
		{"alice@example.org", "alice@example.org", "alice"},
		{`"" <alice@example.org>`, "alice@example.org", "alice"},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>", "Jörg", "j"},
		// RFC 5957 §3: a group's first address structure is its start
		// marker, whose sort value is the group name (RFC 5256 §3: so
		// is its addr-mailbox). Dovecot sorts groups so too.
		{"Team: Bob <bob@x>, c@d;", "Team", "Team"},
		{"undisclosed-recipients:;", "undisclosed-recipients", "undisclosed-recipients"},
		{"local", "local", "local"},
		// The name from a comment (see ParseAddressList) is a display
		// name; one that decodes to nothing is not.
		{"zed@example.org (=?utf-8?q?Andr=C3=A9?=)", "André", "zed"},
		{"=?utf-8?q?_?= <a@b>", "a@b", "a"},
		{"kim <kim@x>, Al <al@y>", "kim", "kim"},
	}
	for _, tt := range tests {
		addrs := ParseAddressList(tt.in)
		if got := SortDisplay(addrs); got != tt.display {
			t.Errorf("SortDisplay(%q) = %q, want %q", tt.in, got, tt.display)
		}
		if got := SortMailbox(addrs); got != tt.mailbox {
			t.Errorf("SortMailbox(%q) = %q, want %q", tt.in, got, tt.mailbox)
		}
	}
}

func TestParseMessageIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"<a@b>", []string{"a@b"}},
		{"<a@b> <c@d>\r\n <e@f>", []string{"a@b", "c@d", "e@f"}},
		{"<a@b> (comment) <c@d>", []string{"a@b", "c@d"}},
		{"<a@\r\n b>", []string{"a@b"}},
		{"<<a@b>", []string{"a@b"}},
		{"<>", nil},
		{"a@b c@d", []string{"a@b", "c@d"}},
		{"Your message of Tuesday <a@b>", []string{"a@b"}},
		{"no ids here", nil},
	}
	for _, tt := range tests {
		if got := ParseMessageIDs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseMessageIDs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := ParseMessageID("  <x@y> <z@w>"); got != "x@y" {
		t.Errorf("ParseMessageID = %q", got)
	}
}
