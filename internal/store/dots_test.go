package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refDotLines is the byte-by-byte reference: a line begins at offset 0
// and after every line feed.
func refDotLines(s string) (offsets []int64, endsLF, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' && (i == 0 || s[i-1] == '\n') {
			offsets = append(offsets, int64(i))
		}
	}
	if len(offsets) > MaxDotLines {
		offsets, ok = nil, false
	} else {
		ok = true
	}
	return offsets, strings.HasSuffix(s, "\n"), ok
}

// TestDotScanner compares the scanner, fed in chunks of several sizes,
// with the reference, and checks that its encoding decodes to the same.
func TestDotScanner(t *testing.T) {
	inputs := []string{
		"", ".", "a", "a\r\n", ".\r\n", "..\r\n", "a\r\n.b\r\n", "\n.", "\r\n.\r\n.\r\n", "x.\r\ny",
		strings.Repeat("\r\n.", MaxDotLines), strings.Repeat("\r\n.", MaxDotLines+1),
		strings.Repeat("z", 5000) + "\r\n." + strings.Repeat("z", 300000) + "\n.",
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		var b strings.Builder
		for range rnd.IntN(200) {
			b.WriteString([]string{".", "\r\n", "a", "\n", "..", "bcd"}[rnd.IntN(6)])
		}
		inputs = append(inputs, b.String())
	}
	for _, in := range inputs {
		wantOffs, wantLF, wantOK := refDotLines(in)
		for _, chunk := range []int{1, 2, 3, 7, 1 << 20} {
			var d DotScanner
			for i := 0; i < len(in); i += chunk {
				if n, err := d.Write([]byte(in[i:min(i+chunk, len(in))])); err != nil || n != min(chunk, len(in)-i) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			offs, lf, ok := d.Result()
			if !slices.Equal(offs, wantOffs) || lf != wantLF || ok != wantOK {
				t.Fatalf("%.60q in chunks of %d: %v %v %v, want %v %v %v", in, chunk, offs, lf, ok, wantOffs, wantLF, wantOK)
			}
			enc := d.Encode()
			if !ok {
				if enc != nil {
					t.Fatalf("%.60q: unknown result encoded as %x", in, enc)
				}
				continue
			}
			dOffs, dLF, err := DecodeDotLines(enc)
			if err != nil || !slices.Equal(dOffs, wantOffs) || dLF != wantLF {
				t.Fatalf("%.60q: decoded %v %v %v, want %v %v", in, dOffs, dLF, err, wantOffs, wantLF)
			}
		}
	}
}

// TestDecodeDotLinesRejects: damaged records are errors, not offsets.
func TestDecodeDotLinesRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0x80},          // flags varint cut off
		{1, 5, 0},       // offsets not increasing
		{0, 0x80, 0x80}, // offset varint cut off
		append([]byte{0}, bytes.Repeat([]byte{2}, MaxDotLines+1)...), // too many
		{8}, // unknown flag
		{4}, // NUL without the flag that says NUL is recorded
	} {
		if offs, _, err := DecodeDotLines(b); err == nil {
			t.Errorf("DecodeDotLines(%x) = %v, want an error", b, offs)
		}
	}
}

// FuzzDecodeDotLines: any input decodes to increasing offsets, at most
// MaxDotLines of them, or to an error.
func FuzzDecodeDotLines(f *testing.F) {
	f.Add([]byte{1})
	f.Add([]byte{0, 0, 10, 20})
	f.Add([]byte{1, 0x80, 0x01, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		offs, _, err := DecodeDotLines(b)
		if err != nil {
			return
		}
		if len(offs) > MaxDotLines {
			t.Fatalf("%d offsets", len(offs))
		}
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				t.Fatalf("offsets not increasing: %v", offs)
			}
		}
	})
}

// TestDotScannerNUL: the record says whether the body holds a NUL byte;
// a record from before that was recorded says nothing, and still
// matches.
func TestDotScannerNUL(t *testing.T) {
	for _, tc := range []struct {
		in  string
		nul bool
	}{
		{"a\r\n.b\r\n", false},
		{"a\x00b", true},
		{"\x00", true},
		{strings.Repeat("x", 1000) + "\x00\n.", true},
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			var d DotScanner
			for i := 0; i < len(tc.in); i += chunk {
				d.Write([]byte(tc.in[i:min(i+chunk, len(tc.in))]))
			}
			if d.NUL() != tc.nul {
				t.Fatalf("%q in chunks of %d: NUL %v", tc.in, chunk, d.NUL())
			}
			offs, lf, nul, known, err := DecodeScan(d.Encode())
			wantOffs, wantLF, _ := refDotLines(tc.in)
			if err != nil || !known || nul != tc.nul || lf != wantLF || !slices.Equal(offs, wantOffs) {
				t.Fatalf("%q: decoded %v %v %v %v %v", tc.in, offs, lf, nul, known, err)
			}
			if !d.Matches(d.Encode()) {
				t.Fatalf("%q: does not match its own record", tc.in)
			}
		}
	}
	// An older record: the dot lines only.
	var d DotScanner
	d.Write([]byte("a\x00\n.b\n"))
	old := []byte{1, 3}
	if _, _, _, known, err := DecodeScan(old); err != nil || known {
		t.Fatalf("old record: known %v, %v", known, err)
	}
	if !d.Matches(old) {
		t.Fatal("an older record of the same dot lines does not match")
	}
	if d.Matches([]byte{1, 2}) || d.Matches([]byte{scanNULKnown | scanEndsLF, 3}) {
		t.Fatal("a wrong record matches")
	}
}
