package message

import (
	"reflect"
	"testing"
)

func TestParseContentType(t *testing.T) {
	tests := []struct {
		in           string
		typ, subtype string
		params       []Param
		ok           bool
	}{
		{"text/plain", "text", "plain", nil, true},
		{"TEXT/HTML; CHARSET=UTF-8", "text", "html", []Param{{"charset", "UTF-8"}}, true},
		{` multipart/mixed ; boundary="a b;c"`, "multipart", "mixed", []Param{{"boundary", "a b;c"}}, true},
		{"text/plain; charset=us-ascii (Plain text)", "text", "plain", []Param{{"charset", "us-ascii"}}, true},
		{"text/plain (comment) ; format=flowed", "text", "plain", []Param{{"format", "flowed"}}, true},
		{"text / plain", "text", "plain", nil, true},
		{`application/octet-stream; name=my file.pdf`, "application", "octet-stream", []Param{{"name", "my file.pdf"}}, true},
		{`text/plain; charset="utf-8"; charset=latin1`, "text", "plain", []Param{{"charset", "utf-8"}}, true},
		{`text/plain; charset="esc\"aped"`, "text", "plain", []Param{{"charset", `esc"aped`}}, true},
		{`text/plain; charset="unterminated`, "text", "plain", []Param{{"charset", "unterminated"}}, true},
		{"text/plain;; ;novalue; a=1", "text", "plain", []Param{{"a", "1"}}, true},
		{"text/plain; a=1 b=2", "text", "plain", []Param{{"a", "1 b=2"}}, true},
		{`text/plain; name="=?utf-8?q?x?="`, "text", "plain", []Param{{"name", "=?utf-8?q?x?="}}, true},
		// RFC 2231 §3, §4, §4.1.
		{"message/external-body; access-type=URL;\r\n URL*0=\"ftp://\";\r\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
			"message", "external-body", []Param{{"access-type", "URL"},
				{"url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}}, true},
		{"application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
			"application", "x-stuff", []Param{{"title", "This is ***fun***"}}, true},
		{"application/x-stuff; title*1=\"b\"; title*0=\"a\"; title*2=\"c\"",
			"application", "x-stuff", []Param{{"title", "abc"}}, true},
		{"application/x-stuff; title*0=\"a\"; title*2=\"c\"", "application", "x-stuff", []Param{{"title", "a"}}, true},
		{"application/x-stuff; title*1=\"b\"; title=\"plain\"", "application", "x-stuff", []Param{{"title", "plain"}}, true},
		{"application/x-stuff; title*1=\"b\"", "application", "x-stuff", nil, true},
		{"text/plain; name*=utf-8''%E2%82%AC; name=\"EUR\"", "text", "plain", []Param{{"name", "€"}}, true},
		{"text/plain; name*=''%41%zz", "text", "plain", []Param{{"name", "A%zz"}}, true},
		{"text/plain; name*=utf-8'%41", "text", "plain", []Param{{"name", "A"}}, true},
		{"text/plain; name*=windows-1252''%93q%94", "text", "plain", []Param{{"name", "“q”"}}, true},
		{"text/plain; name*=utf-8''%FF", "text", "plain", []Param{{"name", "ÿ"}}, true},
		{"text/plain; name*x=1", "text", "plain", nil, true},
		// Invalid.
		{"", "", "", nil, false},
		{"text", "", "", nil, false},
		{"text/", "", "", nil, false},
		{"/plain", "", "", nil, false},
		{"text\\plain", "", "", nil, false},
	}
	for _, tt := range tests {
		typ, sub, params, ok := parseContentType(tt.in)
		if typ != tt.typ || sub != tt.subtype || ok != tt.ok || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("parseContentType(%q) = %q %q %q %v, want %q %q %q %v", tt.in, typ, sub, params, ok,
				tt.typ, tt.subtype, tt.params, tt.ok)
		}
	}
}

func TestParseDisposition(t *testing.T) {
	d, ps := parseDisposition(`Attachment; filename="a.txt"; modification-date="Wed, 12 Feb 1997 16:29:51 -0500"`)
	if d != "attachment" || !reflect.DeepEqual(ps, []Param{{"filename", "a.txt"}, {"modification-date", "Wed, 12 Feb 1997 16:29:51 -0500"}}) {
		t.Errorf("got %q %q", d, ps)
	}
	if d, ps := parseDisposition("  "); d != "" || ps != nil {
		t.Errorf("empty: %q %q", d, ps)
	}
}
