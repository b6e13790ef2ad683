package message

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fullSummary has every field set, including values Parse never makes
// (negative offsets), to test the encoding on its own.
func fullSummary() *Summary {
	env := &Envelope{
		Date: "Mon, 2 Jan 2006 15:04:05 -0700", Subject: "=?utf-8?q?x?=",
		From:      []Address{{Name: "A", Mailbox: "a", Host: "b"}},
		Sender:    []Address{{Adl: "@r", Mailbox: "s", Host: "h"}},
		ReplyTo:   []Address{{Mailbox: "g", IsGroupStart: true}, {Mailbox: "m", Host: "h"}, {IsGroupEnd: true}},
		To:        []Address{{Mailbox: "t", Host: "h"}},
		Cc:        []Address{{Mailbox: "c", Host: "h"}},
		Bcc:       []Address{{Mailbox: "b", Host: "h"}},
		InReplyTo: "<x@y>", MessageID: "<m@y>",
	}
	inner := &Envelope{Subject: "inner"}
	return &Summary{
		Preview:    "Grüße",
		Date:       time.Date(2006, 1, 2, 22, 4, 5, 123, time.UTC),
		References: []string{"a@b", "c@d"},
		Root: Part{
			HeaderStart: 0, BodyStart: 100, End: 5000, Lines: 80, DecodedSize: 4900,
			Type: "multipart", Subtype: "mixed", Params: []Param{{"boundary", "b"}},
			Envelope: env,
			Parts: []Part{
				{HeaderStart: 110, BodyStart: 150, End: 200, Lines: 2, DecodedSize: 37, Type: "text", Subtype: "plain",
					Params: []Param{{"charset", "utf-8"}}, ID: "<id>", Description: "d", Encoding: "base64", MD5: "md5",
					Disposition: "inline", DispositionParams: []Param{{"filename", "f"}}, Language: []string{"en", "de"},
					Location: "http://x"},
				{HeaderStart: 210, BodyStart: 240, End: 4990, Lines: 70, DecodedSize: 4750, Type: "message", Subtype: "rfc822",
					Envelope: inner,
					Parts:    []Part{{HeaderStart: 240, BodyStart: 260, End: 4990, Type: "text", Subtype: "plain", Envelope: inner}}},
				{HeaderStart: -5, BodyStart: -10, End: -20, Lines: -1, DecodedSize: -1, Type: "x", Subtype: "y"},
			},
		},
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, s := range []*Summary{{}, fullSummary()} {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != binaryVersion {
			t.Fatalf("version byte %d", b[0])
		}
		var got Summary
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, s) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, *s)
		}
		if s.Root.Parts != nil && got.Root.Parts[1].Envelope != got.Root.Parts[1].Parts[0].Envelope {
			t.Errorf("shared envelope not shared after decoding")
		}
	}
}

// The root keeps its own envelope even when its only child shares one.
func TestBinaryRootEnvelopeInline(t *testing.T) {
	env := &Envelope{Subject: "same"}
	s := &Summary{Root: Part{Type: "message", Subtype: "rfc822", Envelope: env,
		Parts: []Part{{Type: "text", Subtype: "plain", Envelope: env}}}}
	b, _ := s.MarshalBinary()
	var got Summary
	if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(&got, s) {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	good, _ := fullSummary().MarshalBinary()
	// Every truncation fails cleanly.
	for i := 0; i < len(good); i++ {
		var s Summary
		if err := s.UnmarshalBinary(good[:i]); !errors.Is(err, ErrBadSummary) {
			t.Fatalf("truncated to %d: error %v", i, err)
		}
	}
	bad := map[string][]byte{
		"trailing bytes":  append(append([]byte{}, good...), 0),
		"version 0":       append([]byte{0}, good[1:]...),
		"version 99":      append([]byte{99}, good[1:]...),
		"huge string":     binary.AppendUvarint([]byte{binaryVersion}, 1<<62),
		"huge count":      binary.AppendUvarint([]byte{binaryVersion, 0, 0}, 1<<40),
		"varint overflow": {binaryVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"bad nsec":        binary.AppendUvarint(binary.AppendVarint([]byte{binaryVersion, 0, 1}, 5), 2e9),
	}
	for name, b := range bad {
		var s Summary
		if err := s.UnmarshalBinary(b); !errors.Is(err, ErrBadSummary) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	// A failed decode leaves the receiver alone.
	s := Summary{Preview: "keep"}
	if err := s.UnmarshalBinary([]byte{binaryVersion, 5}); err == nil || s.Preview != "keep" {
		t.Errorf("receiver changed on error")
	}
}

// Nesting is bounded: deeply nested parts are rejected, not recursed into.
func TestUnmarshalBinaryDepth(t *testing.T) {
	var p Part
	cur := &p
	for i := 0; i < MaxDepth+5; i++ {
		cur.Type, cur.Subtype = "multipart", "mixed"
		cur.Parts = []Part{{}}
		cur = &cur.Parts[0]
	}
	cur.Type, cur.Subtype = "text", "plain"
	b, _ := (&Summary{Root: p}).MarshalBinary()
	var s Summary
	if err := s.UnmarshalBinary(b); !errors.Is(err, ErrBadSummary) {
		t.Errorf("error %v for nesting beyond MaxDepth", err)
	}
}

// TestBinaryOlderVersions: summaries stored by an older postfach still
// decode (version 1 has the layout of version 2; only the parser that
// wrote it differs), and a version from the future is refused.
func TestBinaryOlderVersions(t *testing.T) {
	s := fullSummary()
	b, _ := s.MarshalBinary()
	if b[0] != SummaryVersion {
		t.Fatalf("MarshalBinary writes version %d, want SummaryVersion %d", b[0], SummaryVersion)
	}
	b[0] = 1
	var got Summary
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if !reflect.DeepEqual(&got, s) {
		t.Errorf("version 1 decodes differently\n got %+v\nwant %+v", got, *s)
	}
	for _, v := range []byte{0, SummaryVersion + 1, 0xff} {
		b[0] = v
		if err := got.UnmarshalBinary(b); !errors.Is(err, ErrBadSummary) {
			t.Errorf("version %d: %v, want ErrBadSummary", v, err)
		}
	}
}
