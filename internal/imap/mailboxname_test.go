package imap

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 §5.1.3
		{"Entwürfe", "Entw&APw-rfe"},
		{"&", "&-"},
		{"a&b&", "a&-b&-"},
		{"é&", "&AOk-&-"},
		{"☺!", "&Jjo-!"},
		{"éè", "&AOkA6A-"},
		{"😀", "&2D3eAA-"},
		{"\x01", "&AAE-"},
		{"Ärger mit Öl", "&AMQ-rger mit &ANY-l"},
	}
	for _, tc := range tests {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("Encode(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		got, err := DecodeMUTF7(tc.mutf7)
		if err != nil || got != tc.utf8 {
			t.Errorf("Decode(%q) = %q, %v, want %q", tc.mutf7, got, err, tc.utf8)
		}
	}
	bad := []string{
		"&",           // no shift back
		"&AOk",        // no "-"
		"&AOk-&AOk-",  // adjacent runs must be one
		"&AGE-",       // printable "a" shifted
		"&ACY-",       // "&" shifted
		"&AOl-",       // non-zero padding bits
		"&AOkA-",      // a whole character of padding
		"&2D0-",       // lone high surrogate
		"&3gA-",       // lone low surrogate
		"&2D0A6Q-",    // high surrogate followed by a non-surrogate
		"caf\xc3\xa9", // raw 8-bit
		"a\x01b",      // raw control character
		"&Jjo!-",      // character outside the alphabet in a run
		"&/Jjo-",      // "/" is not in modified base64
	}
	for _, s := range bad {
		if got, err := DecodeMUTF7(s); err == nil {
			t.Errorf("Decode(%q) = %q, want error", s, got)
		}
	}
	// Invalid UTF-8 is encoded as U+FFFD.
	if got := EncodeMUTF7("a\xffb"); got != "a&,,0-b" {
		t.Errorf("Encode(invalid) = %q", got)
	}
}

func TestCanonicalMailbox(t *testing.T) {
	good := map[string]string{
		"INBOX":                                 "INBOX",
		"inbox":                                 "INBOX",
		"InBoX/Sub/x":                           "INBOX/Sub/x",
		"INBOXES":                               "INBOXES",
		"Inboxes/a":                             "Inboxes/a",
		"Entwürfe":                              "Entwürfe",
		"a b/c.d/e..f":                          "a b/c.d/e..f",
		"x*%":                                   "x*%",
		"&":                                     "&",
		"日本語/台北":                                "日本語/台北",
		strings.Repeat("a", MaxMailboxLevelLen): strings.Repeat("a", MaxMailboxLevelLen),
	}
	for in, want := range good {
		got, err := CanonicalMailbox(in)
		if err != nil || got != want {
			t.Errorf("CanonicalMailbox(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "/", "/a", "a/", "a//b", "a\x00", "a\x1fb", "a\x7fb", "a\u0085b",
		".", "..", "a/./b", "a/../b", "a\xff",
		strings.Repeat("a", MaxMailboxLevelLen+1),
		strings.Repeat("a/", MaxMailboxDepth) + "a",
		strings.Repeat("abcdefghi/", MaxMailboxNameLen/10) + "x",
	}
	for _, in := range bad {
		if got, err := CanonicalMailbox(in); err == nil {
			t.Errorf("CanonicalMailbox(%q) = %q, want error", in, got)
		}
	}
	if err := ValidNewMailbox("a*"); err == nil {
		t.Error("ValidNewMailbox(a*) accepted")
	}
	if err := ValidNewMailbox("a%b"); err == nil {
		t.Error("ValidNewMailbox with % accepted")
	}
	if err := ValidNewMailbox("Archive/2024"); err != nil {
		t.Error(err)
	}
}

func TestDecodeMailbox(t *testing.T) {
	tests := []struct {
		raw  string
		utf8 bool
		want string
		ok   bool
	}{
		{"Entw&APw-rfe", false, "Entwürfe", true},
		{"inbox/&AOk-t&AOk-", false, "INBOX/été", true},
		{"Entwürfe", true, "Entwürfe", true},
		{"Entw&APw-rfe", true, "Entw&APw-rfe", true}, // UTF-8 sessions send names as they are
		{"Entwürfe", false, "Entwürfe", true},        // 8-bit can only be meant as UTF-8 (go-imap v2 sends it so)
		{"Büro &- Co", false, "Büro & Co", true},     // ... with "&" escaped as in modified UTF-7
		{"Caf\xe9", false, "", false},                // neither modified UTF-7 nor UTF-8
		{"&AGE-", false, "", false},
		{"a/&AC8-b", false, "", false}, // "/" shifted is not canonical
		{"", false, "", false},
	}
	for _, tc := range tests {
		got, err := DecodeMailbox(tc.raw, tc.utf8)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("DecodeMailbox(%q, %v) = %q, %v", tc.raw, tc.utf8, got, err)
		}
	}
}

func TestMatchList(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "INBOX", true},
		{"*", "a/b/c", true},
		{"%", "INBOX", true},
		{"%", "a/b", false},
		{"a/%", "a/b", true},
		{"a/%", "a/b/c", false},
		{"a/*", "a/b/c", true},
		{"a/*", "a", false},
		{"a*", "a", true},
		{"a%", "a", true},
		{"inbox", "INBOX", true},
		{"Inbox/%", "INBOX/x", true},
		{"inbox/%", "INBOX/x/y", false},
		{"inb*", "INBOX", true},
		{"INBOX", "INBOXES", false},
		{"inboxes", "INBOXES", false},
		{"Sent", "sent", false},
		{"%/%", "a/b", true},
		{"%/%", "a/b/c", false},
		{"*b", "a/b", true},
		{"*/b", "a/x/b", true},
		{"%b", "a/b", false},
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"日本*", "日本語/台北", true},
		{"日本%", "日本語/台北", false},
		{"*北", "日本語/台北", true},
		{strings.Repeat("%", 40) + "a", strings.Repeat("b", 5000), false},
		{strings.Repeat("*", 100) + "b", strings.Repeat("b", 500), true},
	}
	for _, tc := range tests {
		if got := MatchList(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchList(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

func TestListReference(t *testing.T) {
	tests := []struct{ ref, pat, want string }{
		{"", "*", "*"},
		{"Archive/", "%", "Archive/%"},
		{"Archive", "%", "Archive%"},
		{"Archive/", "/abs", "/abs"},
		{"x", "", "x"},
	}
	for _, tc := range tests {
		if got := ListReference(tc.ref, tc.pat); got != tc.want {
			t.Errorf("ListReference(%q, %q) = %q, want %q", tc.ref, tc.pat, got, tc.want)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "&U,BTFw-", "Entw&APw-rfe", "&-", "&AOk-&AOk-", "&2D3eAA-", "&AOl-", "caf\xc3\xa9", "Entwürfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Decoding accepts only the canonical form, so whatever it
		// accepts encodes back to the same string.
		if dec, err := DecodeMUTF7(s); err == nil {
			if enc := EncodeMUTF7(dec); enc != s {
				t.Fatalf("Decode(%q) = %q, which encodes to %q", s, dec, enc)
			}
			if !utf8.ValidString(dec) {
				t.Fatalf("Decode(%q) = %q: invalid UTF-8", s, dec)
			}
		}
		// Every valid UTF-8 string survives a round trip.
		if utf8.ValidString(s) {
			enc := EncodeMUTF7(s)
			dec, err := DecodeMUTF7(enc)
			if err != nil || dec != s {
				t.Fatalf("round trip of %q: %q -> %q, %v", s, enc, dec, err)
			}
			for i := 0; i < len(enc); i++ {
				if enc[i] < 0x20 || enc[i] > 0x7e {
					t.Fatalf("Encode(%q) = %q: not printable ASCII", s, enc)
				}
			}
		}
		// Mailbox canonicalisation is idempotent.
		if c, err := CanonicalMailbox(s); err == nil {
			if c2, err := CanonicalMailbox(c); err != nil || c2 != c {
				t.Fatalf("CanonicalMailbox not idempotent on %q", s)
			}
		}
	})
}

func TestDecodePattern(t *testing.T) {
	tests := []struct {
		raw  string
		utf8 bool
		want string
	}{
		{"INBOX/%", false, "INBOX/%"},
		{"&AMQ-pfel*", false, "Äpfel*"},
		{"R&-D", false, "R&D"},
		// Not modified UTF-7: the "&" stands for itself.
		{"R&D", false, "R&D"},
		{"&", false, "&"},
		{"a&*", false, "a&*"},
		{"&AMQ", false, "&AMQ"},
		{"&Jjo", false, "&Jjo"},
		{"&AGE-", false, "&AGE-"}, // a shifted printable character is not canonical
		{"!#$&'+,-.0123456789:;<=>?@^_`|[}%*", false, "!#$&'+,-.0123456789:;<=>?@^_`|[}%*"},
		// A valid run still decodes next to a bare "&".
		{"B&APw-r&o*", false, "Bür&o*"},
		// UTF-8, enabled or not.
		{"Bür&o*", true, "Bür&o*"},
		{"Bür&-o", false, "Bür&o"},
		{"\xff*", false, "\xff*"},
	}
	for _, tc := range tests {
		if got := DecodePattern(tc.raw, tc.utf8); got != tc.want {
			t.Errorf("DecodePattern(%q, %v) = %q, want %q", tc.raw, tc.utf8, got, tc.want)
		}
	}
}

func FuzzDecodePattern(f *testing.F) {
	for _, s := range []string{"", "%", "&AMQ-*", "R&D", "&", "&-&", "a&AMQ", "B&APw-r&o*", "\xff&", "&2D3eAA-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := DecodePattern(s, false)
		// A valid name decodes as DecodeName does; anything else is
		// still answered.
		if d, err := DecodeName(s, false); err == nil && got != d {
			t.Fatalf("DecodePattern(%q) = %q, DecodeName = %q", s, got, d)
		}
		// Wildcards are never lost or invented.
		if strings.Count(got, "*") != strings.Count(s, "*") || strings.Count(got, "%") != strings.Count(s, "%") {
			t.Fatalf("DecodePattern(%q) = %q changes the wildcards", s, got)
		}
	})
}
