package smtpserver

import (
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct{ line, verb, arg string }{
		{"NOOP\r\n", "NOOP", ""},
		{"noop\r\n", "NOOP", ""},
		{"mail FROM:<a@b.example> size=10\r\n", "MAIL", "FROM:<a@b.example> size=10"},
		{"RCPT  TO:<x@y>  \r\n", "RCPT", "TO:<x@y>"},
		{"QUIT\n", "QUIT", ""},
		{"\r\n", "", ""},
		{" EHLO host\r\n", "EHLO", "host"},
		{"ehlo\thost\r\n", "EHLO", "host"},
		{"Bdat 10 last\r\n", "BDAT", "10 last"},
	}
	for _, tt := range tests {
		verb, arg := splitCommand([]byte(tt.line))
		if verb != tt.verb || arg != tt.arg {
			t.Errorf("%q: %q %q, want %q %q", tt.line, verb, arg, tt.verb, tt.arg)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		arg, keyword  string
		mailbox, rest string
		ok            bool
	}{
		{"FROM:<a@b.example>", "FROM:", "a@b.example", "", true},
		{"from:<a@b.example> SIZE=100 BODY=8BITMIME", "FROM:", "a@b.example", "SIZE=100 BODY=8BITMIME", true},
		{"FROM:<>", "FROM:", "", "", true},
		{"FROM: <a@b.example>", "FROM:", "a@b.example", "", true},
		{"FROM:a@b.example SIZE=1", "FROM:", "a@b.example", "SIZE=1", true},
		{"TO:<@relay.example,@other.example:u@d.example>", "TO:", "u@d.example", "", true},
		{`TO:<"john doe>"@d.example>`, "TO:", `"john doe>"@d.example`, "", true},
		{`TO:<"a\"b"@d.example>`, "TO:", `"a\"b"@d.example`, "", true},
		{"TO:<Postmaster>", "TO:", "Postmaster", "", true},
		{"TO:<u@d.example>x", "TO:", "", "", false},
		{"TO:<u@d.example", "TO:", "", "", false},
		{"TO:<a<b@c>", "TO:", "", "", false},
		{"TO:<@relay.example>", "TO:", "", "", false},
		{"TO:<@relay.example:>", "TO:", "", "", false},
		{"TO:", "TO:", "", "", false},
		{"FROM:<a@b>", "TO:", "", "", false},
		{"TO:a>b@c", "TO:", "", "", false},
	}
	for _, tt := range tests {
		mailbox, rest, ok := parsePath(tt.arg, tt.keyword)
		if ok != tt.ok || (ok && (mailbox != tt.mailbox || rest != tt.rest)) {
			t.Errorf("%q: %q %q %v, want %q %q %v", tt.arg, mailbox, rest, ok, tt.mailbox, tt.rest, tt.ok)
		}
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in   string
		want []param
		ok   bool
	}{
		{"", nil, true},
		{"SIZE=100", []param{{"SIZE", "100", true}}, true},
		{"size=100 body=8bitmime SMTPUTF8", []param{{"SIZE", "100", true}, {"BODY", "8bitmime", true}, {"SMTPUTF8", "", false}}, true},
		{"X-FOO=bär", []param{{"X-FOO", "bär", true}}, true},
		{"SIZE=", nil, false},
		{"SIZE=1=2", nil, false},
		{"-X", nil, false},
		{"SI_ZE=1", nil, false},
		{"SIZE=1 size=2", nil, false},
	}
	for _, tt := range tests {
		got, ok := parseParams(tt.in)
		if ok != tt.ok || len(got) != len(tt.want) {
			t.Errorf("%q: %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestParseBDAT(t *testing.T) {
	tests := []struct {
		arg      string
		size     int64
		last, ok bool
	}{
		{"0", 0, false, true},
		{"100", 100, false, true},
		{"100 LAST", 100, true, true},
		{"0 last", 0, true, true},
		{"", 0, false, false},
		{"-1", 0, false, false},
		{"10 FIRST", 0, false, false},
		{"1e3", 0, false, false},
		{"9999999999999999999", 0, false, false},
	}
	for _, tt := range tests {
		size, last, ok := parseBDAT(tt.arg)
		if ok != tt.ok || size != tt.size || last != tt.last {
			t.Errorf("%q: %d %v %v, want %d %v %v", tt.arg, size, last, ok, tt.size, tt.last, tt.ok)
		}
	}
}

func TestHelloDomain(t *testing.T) {
	for _, tt := range []struct {
		arg, want string
		ok        bool
	}{
		{"mx.example.org", "mx.example.org", true},
		{"[192.0.2.1] extra words", "[192.0.2.1]", true},
		{"", "", false},
		{strings.Repeat("a", 256), "", false},
		{"bad\x01name", "", false},
	} {
		got, ok := helloDomain(tt.arg)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: %q %v", tt.arg, got, ok)
		}
	}
}

func TestCanonicalMailbox(t *testing.T) {
	for _, tt := range []struct {
		in, want  string
		plain, ok bool
	}{
		{`alice@example.org`, `alice@example.org`, true, true},
		{`"alice"@example.org`, `alice@example.org`, true, true},
		{`"al\ice"@example.org`, `alice@example.org`, true, true},
		{`"first.last+tag"@example.org`, `first.last+tag@example.org`, true, true},
		{`"!#$%&'*+-/=?^_{|}~"@example.org`, `!#$%&'*+-/=?^_{|}~@example.org`, true, true},
		{`"jörg"@example.org`, `jörg@example.org`, true, true},
		{`"john doe"@example.org`, `"john doe"@example.org`, false, true},
		{`"a..b"@example.org`, `"a..b"@example.org`, false, true},
		{`".a"@example.org`, `".a"@example.org`, false, true},
		{`""@example.org`, `""@example.org`, false, true},
		{`"a\"b"@example.org`, `"a\"b"@example.org`, false, true},
		{`"a\\b"@example.org`, `"a\\b"@example.org`, false, true},
		{`"a\ b"@example.org`, `"a b"@example.org`, false, true},
		{`"a@b"@example.org`, `"a@b"@example.org`, false, true},
		{`"alice"`, ``, false, false},
		{`"alice"@`, ``, false, false},
		{`"alice"x@example.org`, ``, false, false},
		{`"alice@example.org`, ``, false, false},
		{"\"a\tb\"@example.org", ``, false, false},
		{"\"a\\\x01\"@example.org", ``, false, false},
		{`"a\`, ``, false, false},
		{"\"a b\"@exa mple.org", ``, false, false},
		{"\"a b\"@\x7f", ``, false, false},
		{`"a b"@x"y`, ``, false, false},
	} {
		got, plain, ok := canonicalMailbox(tt.in)
		if got != tt.want || plain != tt.plain || ok != tt.ok {
			t.Errorf("%s: %q %v %v, want %q %v %v", tt.in, got, plain, ok, tt.want, tt.plain, tt.ok)
		}
	}
}

// FuzzCommand checks the command-line parsers on any input: no panic,
// and what they return is consistent with what they were given.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8\r\n",
		"RCPT TO:<@r.example:u@d.example>\r\n",
		`RCPT TO:<"q\"x>"@d.example> NOTIFY=NEVER` + "\r\n",
		"BDAT 1000 LAST\r\n",
		"EHLO [IPv6:2001:db8::1]\r\n",
		"mail from: x@y\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		verb, arg := splitCommand(line)
		if strings.ContainsAny(verb, " \tabcdefghijklmnopqrstuvwxyz") {
			t.Fatalf("verb %q", verb)
		}
		if arg != strings.Trim(arg, " \t") {
			t.Fatalf("argument %q not trimmed", arg)
		}
		for _, kw := range []string{"FROM:", "TO:"} {
			mailbox, rest, ok := parsePath(arg, kw)
			if !ok {
				continue
			}
			if !strings.Contains(arg, mailbox) || !strings.Contains(arg, rest) {
				t.Fatalf("%q: mailbox %q rest %q not taken from the argument", arg, mailbox, rest)
			}
			// The canonical form is a fixed point, has no control
			// characters, and a plain one has no quotes.
			if c, plain, ok := canonicalMailbox(mailbox); ok && strings.HasPrefix(mailbox, `"`) {
				if again, p2, ok2 := canonicalMailbox(c); !ok2 || again != c || p2 != plain {
					t.Fatalf("%q: canonical %q, then %q %v %v", mailbox, c, again, p2, ok2)
				}
				if strings.ContainsFunc(c, func(r rune) bool { return r < 32 || r == 127 }) {
					t.Fatalf("%q: canonical %q has a control character", mailbox, c)
				}
				if plain && strings.Contains(c[:strings.LastIndexByte(c, '@')], `"`) {
					t.Fatalf("%q: plain canonical %q has a quote", mailbox, c)
				}
			}
			if params, ok := parseParams(rest); ok {
				for _, p := range params {
					if !validKeyword(p.key) || (p.eq && !validValue(p.value)) {
						t.Fatalf("param %+v", p)
					}
				}
			}
		}
		if size, _, ok := parseBDAT(arg); ok && size < 0 {
			t.Fatalf("BDAT size %d", size)
		}
		if d, ok := helloDomain(arg); ok && (d == "" || len(d) > maxDomain || !strings.HasPrefix(arg, d)) {
			t.Fatalf("hello domain %q of %q", d, arg)
		}
	})
}
