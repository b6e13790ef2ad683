package imap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestReadURLAuthCommands: GENURLAUTH, RESETKEY and URLFETCH (RFC 4467
// §9) with the RFC 5524 URLFETCH parameters, as the RFCs' examples send
// them.
func TestReadURLAuthCommands(t *testing.T) {
	const rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
	const full = rump + ":internal:91354a473744909de610943775f92038"
	tests := []struct {
		in   string
		want Command
	}{
		{`a775 GENURLAUTH "` + rump + `" INTERNAL` + "\r\n",
			&GenURLAuth{base("a775", "GENURLAUTH"), []URLAuthRequest{{rump, "INTERNAL"}}}},
		{`a genurlauth "` + rump + `" internal {3}` + "\r\nx;y internal\r\n",
			&GenURLAuth{base("a", "GENURLAUTH"), []URLAuthRequest{{rump, "INTERNAL"}, {"x;y", "INTERNAL"}}}},
		{"a31 RESETKEY\r\n", &ResetKey{CommandBase: base("a31", "RESETKEY")}},
		{"a32 RESETKEY inbox\r\n", &ResetKey{CommandBase: base("a32", "RESETKEY"), Mailbox: "INBOX", HasMailbox: true}},
		{"a33 RESETKEY INBOX XSAMPLE internal\r\n", &ResetKey{base("a33", "RESETKEY"), "INBOX", true, []string{"XSAMPLE", "INTERNAL"}}},
		{`a34 RESETKEY "Other Folder"` + "\r\n", &ResetKey{CommandBase: base("a34", "RESETKEY"), Mailbox: "Other Folder", HasMailbox: true}},
		{`a777 URLFETCH "` + full + `"` + "\r\n", &URLFetch{base("a777", "URLFETCH"), []URLFetchItem{{URL: full}}}},
		{`a URLFETCH ("` + full + `" BINARY bodypartstructure) "x" ("y") ("z" BODY)` + "\r\n",
			&URLFetch{base("a", "URLFETCH"), []URLFetchItem{
				{URL: full, Extended: true, Binary: true, BodyPartStructure: true},
				{URL: "x"},
				{URL: "y", Extended: true},
				{URL: "z", Extended: true, Body: true},
			}}},
	}
	for _, tc := range tests {
		r, _ := newTestReader(tc.in+"z NOOP\r\n", Options{})
		got, err := r.ReadCommand()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", tc.in, got, tc.want)
		}
		if next, err := r.ReadCommand(); err != nil || next.Base().Tag != "z" {
			t.Errorf("%q: command after it: %v, %v", tc.in, next, err)
		}
	}
}

// TestReadURLAuthCommandsBad: the forms the grammar does not allow get
// BAD with a reason, and the session reads the next command.
func TestReadURLAuthCommandsBad(t *testing.T) {
	many := "a URLFETCH" + strings.Repeat(" x", maxURLAuthItems+1) + "\r\n"
	tests := []struct{ in, reason string }{
		{"a GENURLAUTH\r\n", "missing argument"},
		{`a GENURLAUTH "imap://a@b/INBOX/;uid=1;urlauth=anonymous"` + "\r\n", "missing argument"},
		{`a GENURLAUTH "u" INTERNAL "v"` + "\r\n", "missing argument"},
		{`a GENURLAUTH "u" "INTERNAL"` + "\r\n", "expected URLAUTH mechanism"},
		{"a URLFETCH\r\n", "missing argument"},
		{`a URLFETCH ("u" BINARY` + "\r\n", "expected ) to end the URLFETCH parameters"},
		{`a URLFETCH ("u" SIZE)` + "\r\n", "unknown URLFETCH parameter"},
		{`a URLFETCH ("u" BODY BINARY)` + "\r\n", "BODY and BINARY exclude each other"},
		{`a URLFETCH ("u" BINARY BINARY)` + "\r\n", "URLFETCH parameter given twice"},
		{`a URLFETCH "u"  "v"` + "\r\n", "expected URL"},
		{"a RESETKEY INBOX \"INTERNAL\"\r\n", "expected URLAUTH mechanism"},
		{many, "too many URLs"},
	}
	for _, tc := range tests {
		r, _ := newTestReader(tc.in+"z NOOP\r\n", Options{})
		_, err := r.ReadCommand()
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Status != BAD || pe.Reason != tc.reason || pe.Tag != "a" || pe.Fatal {
			t.Errorf("%q: %#v, want BAD %q", tc.in, err, tc.reason)
			continue
		}
		if next, err := r.ReadCommand(); err != nil || next.Base().Tag != "z" {
			t.Errorf("%q: command after it: %v, %v", tc.in, next, err)
		}
	}
}

// TestParseSection: section specifications of IMAP URLs, good and bad.
func TestParseSection(t *testing.T) {
	for spec, want := range map[string]Section{
		"":                           {},
		"1":                          {Part: []uint32{1}},
		"1.2.3":                      {Part: []uint32{1, 2, 3}},
		"1.2.HEADER":                 {Part: []uint32{1, 2}, Text: SectionHeader},
		"text":                       {Text: SectionTextBody},
		"2.MIME":                     {Part: []uint32{2}, Text: SectionMIME},
		"HEADER.FIELDS (Subject To)": {Text: SectionHeaderFields, Fields: []string{"Subject", "To"}},
	} {
		got, err := ParseSection(spec)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseSection(%q) = %#v, %v; want %#v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"0", "1.", "x", "1]<0.5", "1] BODY[2", "HEADER.FIELDS", "1\r\nb NOOP", "{3}", "MIME",
		strings.Repeat("1.", 3000) + "1"} {
		if got, err := ParseSection(spec); !errors.Is(err, ErrBadSection) {
			t.Errorf("ParseSection(%q) = %#v, %v; want ErrBadSection", spec, got, err)
		}
	}
}
