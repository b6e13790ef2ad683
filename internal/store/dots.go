package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// MaxDotLines is the most dot-line offsets a DotScanner keeps. A body
// with more is reported as unknown: sending it in that many pieces would
// cost more than scanning it.
const MaxDotLines = 64

// DotScanner finds, in a body written through it, the offsets of the
// lines that begin with "." and whether the body ends with a line feed:
// what BodyFile.DotLines reports; and whether it contains a NUL byte
// (BodyNUL). A line begins at offset 0 and after every line feed, as for
// byte-stuffing (RFC 1939 §3, RFC 5321 §4.5.2). The zero value is ready
// to use.
type DotScanner struct {
	n        int64 // bytes seen
	last     byte  // the last byte seen
	offsets  []int64
	overflow bool
	nul      bool // a NUL byte was seen
}

// Write records the dot lines in p; it never fails.
func (d *DotScanner) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !d.nul && bytes.IndexByte(p, 0) >= 0 {
		d.nul = true
	}
	if p[0] == '.' && (d.n == 0 || d.last == '\n') {
		d.add(d.n)
	}
	for i := 0; !d.overflow; {
		j := bytes.Index(p[i:], []byte("\n."))
		if j < 0 {
			break
		}
		d.add(d.n + int64(i+j+1))
		i += j + 2
	}
	d.n += int64(len(p))
	d.last = p[len(p)-1]
	return len(p), nil
}

func (d *DotScanner) add(off int64) {
	if len(d.offsets) == MaxDotLines {
		d.overflow = true
		d.offsets = nil
		return
	}
	if !d.overflow {
		d.offsets = append(d.offsets, off)
	}
}

// Result returns the offsets of the dot lines and whether the body ends
// with a line feed; ok is false when there were more than MaxDotLines.
func (d *DotScanner) Result() (offsets []int64, endsLF, ok bool) {
	return d.offsets, d.last == '\n', !d.overflow
}

// NUL reports whether the body contains a NUL byte.
func (d *DotScanner) NUL() bool { return d.nul }

// Flags of the record Encode writes.
const (
	scanEndsLF   = 1 << iota // the body ends with a line feed
	scanNULKnown             // the record says whether the body holds NUL (older ones do not)
	scanNUL                  // the body holds a NUL byte
)

// Encode returns the result in the form stored with a body (see
// DecodeScan), or nil when it is unknown.
func (d *DotScanner) Encode() []byte {
	offsets, endsLF, ok := d.Result()
	if !ok {
		return nil
	}
	b := make([]byte, 0, 1+len(offsets)*3)
	var flags uint64 = scanNULKnown
	if endsLF {
		flags |= scanEndsLF
	}
	if d.nul {
		flags |= scanNUL
	}
	b = binary.AppendUvarint(b, flags)
	prev := int64(0)
	for _, off := range offsets {
		b = binary.AppendUvarint(b, uint64(off-prev))
		prev = off
	}
	return b
}

// Matches reports whether record (what Encode wrote, now or in an older
// version) says what the scanner found.
func (d *DotScanner) Matches(record []byte) bool {
	offsets, endsLF, nul, nulKnown, err := DecodeScan(record)
	wantOffs, wantLF, ok := d.Result()
	return err == nil && ok && slices.Equal(offsets, wantOffs) && endsLF == wantLF && (!nulKnown || nul == d.nul)
}

// DecodeDotLines reads the dot lines of a record DotScanner.Encode wrote
// (see DecodeScan).
func DecodeDotLines(b []byte) (offsets []int64, endsLF bool, err error) {
	offsets, endsLF, _, _, err = DecodeScan(b)
	return offsets, endsLF, err
}

// DecodeScan reads what DotScanner.Encode wrote: a flags varint (bit 0:
// the body ends with a line feed; bit 1: bit 2 says whether the body
// holds a NUL byte, which records written before it was added do not),
// then the offsets as increasing deltas, each a varint.
func DecodeScan(b []byte) (offsets []int64, endsLF, nul, nulKnown bool, err error) {
	flags, n := binary.Uvarint(b)
	if n <= 0 || flags > scanEndsLF|scanNULKnown|scanNUL || flags&scanNUL != 0 && flags&scanNULKnown == 0 {
		// Unknown flags: a newer format, or damage.
		return nil, false, false, false, errors.New("dot lines: bad flags")
	}
	nul, nulKnown = flags&scanNUL != 0, flags&scanNULKnown != 0
	b = b[n:]
	var off int64
	for len(b) > 0 {
		delta, n := binary.Uvarint(b)
		if n <= 0 || len(offsets) == MaxDotLines || delta > uint64(math.MaxInt64-off) {
			return nil, false, false, false, errors.New("dot lines: bad offset")
		}
		if len(offsets) > 0 && delta == 0 {
			return nil, false, false, false, errors.New("dot lines: offsets not increasing")
		}
		off += int64(delta)
		offsets = append(offsets, off)
		b = b[n:]
	}
	return offsets, flags&scanEndsLF != 0, nul, nulKnown, nil
}
