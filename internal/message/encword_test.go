package message

import "testing"

func TestDecodeHeaderValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"folded\r\n line", "folded line"},
		{"=?utf-8?q?caf=C3=A9?=", "café"},
		{"=?UTF-8?B?Y2Fmw6k=?=", "café"},
		{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"},
		// RFC 2047 §8 examples.
		{"(=?ISO-8859-1?Q?a?=)", "(a)"},
		{"(=?ISO-8859-1?Q?a?= b)", "(a b)"},
		{"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"},
		{"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"},
		{"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"},
		{"(=?ISO-8859-1?Q?a_b?=)", "(a b)"},
		{"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"},
		// A UTF-8 character split across two encoded words.
		{"=?utf-8?b?w6Q=?= =?utf-8?b?w7Y=?=", "äö"},
		{"=?utf-8?B?4oI=?= =?utf-8?B?rA==?=", "€"},
		{"=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "€"},
		// Lenient forms.
		{"=?utf-8?b?w6Q?=", "ä"},                   // missing padding
		{"=?utf-8?q?hello world?=", "hello world"}, // space inside Q
		{"foo=?utf-8?q?bar?=baz", "foobarbaz"},     // inside a word
		{`"=?utf-8?q?J=C3=B6rg?=" <j@x>`, `"Jörg" <j@x>`},
		{"=?utf-8*en?q?hi?=", "hi"}, // RFC 2231 language
		{"=?x-unknown?q?caf=E9?=", "café"},
		{"=?x-unknown?q?caf=C3=A9?=", "café"},
		{"=?utf-8?x?bad?=", "=?utf-8?x?bad?="},
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"=??q?empty charset?=", "=??q?empty charset?="},
		{"a =?utf-8?q?b?= c", "a b c"},
		{"=?utf-8?q?=ZZ?=", "=ZZ"},
		{"=?Shift_JIS?B?jlKTYw==?=", "山田"},
		{"=?ISO-2022-JP?B?GyRCJEgkaiQiJCgkOhsoQg==?=", "とりあえず"},
		{"=?windows-1252?q?=93quoted=94?=", "“quoted”"},
		// Raw 8-bit text.
		{"Gr\xfc\xdfe", "Grüße"},
		{"Grüße", "Grüße"},
	}
	for _, tt := range tests {
		if got := DecodeHeaderValue(tt.in); got != tt.want {
			t.Errorf("DecodeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
