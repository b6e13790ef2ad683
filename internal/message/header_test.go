package message

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const sampleHeader = "From: Alice <alice@example.org>\r\n" +
	"Subject: a folded\r\n\tsubject line\r\n" +
	"X-Empty:\r\n" +
	"received: one\r\n" +
	"Received: two\r\n" +
	"not a field line\r\n" +
	"To : bob@example.net\r\n" +
	"\r\n"

func TestReadHeader(t *testing.T) {
	r := io.MultiReader(strings.NewReader(sampleHeader), strings.NewReader("body must not be read\r\n"))
	h, err := ReadHeader(iotest.OneByteReader(r), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Terminated || len(h.Fields) != 7 {
		t.Fatalf("terminated %v, %d fields", h.Terminated, len(h.Fields))
	}
	tests := []struct{ name, want string }{
		{"from", "Alice <alice@example.org>"},
		{"SUBJECT", "a folded\tsubject line"},
		{"x-empty", ""},
		{"Received", "one"},
		{"to", "bob@example.net"},
		{"missing", ""},
	}
	for _, tt := range tests {
		if got := h.Get(tt.name); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := h.Values("received"); len(got) != 2 || got[1] != "two" {
		t.Errorf("Values = %q", got)
	}
	if !h.Has("x-empty") || h.Has("x-none") {
		t.Errorf("Has wrong")
	}
	if got := string(h.Fields[1].Raw); got != "Subject: a folded\r\n\tsubject line\r\n" {
		t.Errorf("raw folded field %q", got)
	}
	if h.Fields[5].Name != "" {
		t.Errorf("non-field line has name %q", h.Fields[5].Name)
	}
}

// RFC 9051 §6.4.5: HEADER.FIELDS returns the original lines, with the
// blank line.
func TestAppendFields(t *testing.T) {
	h := ParseHeader([]byte(sampleHeader + "body"))
	got := string(h.AppendFields(nil, []string{"subject", "RECEIVED"}, false))
	want := "Subject: a folded\r\n\tsubject line\r\nreceived: one\r\nReceived: two\r\n\r\n"
	if got != want {
		t.Errorf("HEADER.FIELDS\n got %q\nwant %q", got, want)
	}
	got = string(h.AppendFields(nil, []string{"subject", "received", "x-empty"}, true))
	want = "From: Alice <alice@example.org>\r\nnot a field line\r\nTo : bob@example.net\r\n\r\n"
	if got != want {
		t.Errorf("HEADER.FIELDS.NOT\n got %q\nwant %q", got, want)
	}
	if got := string(h.AppendFields(nil, []string{"nothing"}, false)); got != "\r\n" {
		t.Errorf("no match: %q", got)
	}
	// A message without a blank line gets none.
	h = ParseHeader([]byte("Subject: x\r\nTo: y"))
	if h.Terminated || string(h.AppendFields(nil, []string{"to"}, false)) != "To: y" {
		t.Errorf("unterminated header: %+v", h)
	}
}

func TestReadHeaderLimit(t *testing.T) {
	h, err := ReadHeader(strings.NewReader(sampleHeader), 40)
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("error %v", err)
	}
	if h.Get("from") != "Alice <alice@example.org>" {
		t.Errorf("partial header lost the first field")
	}
	// The exact size is within the limit.
	if _, err := ReadHeader(strings.NewReader(sampleHeader), len(sampleHeader)); err != nil {
		t.Errorf("exact limit: %v", err)
	}
}

func TestReadHeaderEdgeCases(t *testing.T) {
	tests := []struct {
		in         string
		fields     int
		terminated bool
	}{
		{"", 0, false},
		{"\r\n", 0, true},
		{"\n", 0, true},
		{" leading continuation\r\nA: b\r\n\r\n", 2, true},
		{"A: b\nB: c\n\nbody", 2, true},
		{"A: " + strings.Repeat("x", 10000) + "\r\n\r\n", 1, true},
		{"A: b\r\n\r", 2, false}, // the lone CR is a line of its own
	}
	for _, tt := range tests {
		h, err := ReadHeader(strings.NewReader(tt.in), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Fields) != tt.fields || h.Terminated != tt.terminated {
			t.Errorf("%.30q: %d fields, terminated %v", tt.in, len(h.Fields), h.Terminated)
		}
		var raw []byte
		for _, f := range h.Fields {
			raw = append(raw, f.Raw...)
		}
		if !bytes.HasPrefix([]byte(tt.in), raw) {
			t.Errorf("%.30q: raw fields are not the input", tt.in)
		}
	}
}
