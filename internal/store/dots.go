package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// MaxDotLines is the most dot-line offsets a DotScanner keeps. A body
// with more is reported as unknown: sending it in that many pieces would
// cost more than scanning it.
const MaxDotLines = 64

// DotScanner finds, in a body written through it, the offsets of the
// lines that begin with "." and whether the body ends with a line feed:
// what BodyFile.DotLines reports. A line begins at offset 0 and after
// every line feed, as for byte-stuffing (RFC 1939 §3, RFC 5321 §4.5.2).
// The zero value is ready to use.
type DotScanner struct {
	n        int64 // bytes seen
	last     byte  // the last byte seen
	offsets  []int64
	overflow bool
}

// Write records the dot lines in p; it never fails.
func (d *DotScanner) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
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

// Encode returns the result in the form stored with a body (see
// DecodeDotLines), or nil when it is unknown.
func (d *DotScanner) Encode() []byte {
	offsets, endsLF, ok := d.Result()
	if !ok {
		return nil
	}
	b := make([]byte, 0, 1+len(offsets)*3)
	var flags uint64
	if endsLF {
		flags = 1
	}
	b = binary.AppendUvarint(b, flags)
	prev := int64(0)
	for _, off := range offsets {
		b = binary.AppendUvarint(b, uint64(off-prev))
		prev = off
	}
	return b
}

// DecodeDotLines reads what DotScanner.Encode wrote: a flags varint (bit
// 0: the body ends with a line feed), then the offsets as increasing
// deltas, each a varint.
func DecodeDotLines(b []byte) (offsets []int64, endsLF bool, err error) {
	flags, n := binary.Uvarint(b)
	if n <= 0 || flags > 1 {
		// Unknown flags: a newer format, or damage.
		return nil, false, errors.New("dot lines: bad flags")
	}
	b = b[n:]
	var off int64
	for len(b) > 0 {
		delta, n := binary.Uvarint(b)
		if n <= 0 || len(offsets) == MaxDotLines || delta > uint64(math.MaxInt64-off) {
			return nil, false, errors.New("dot lines: bad offset")
		}
		if len(offsets) > 0 && delta == 0 {
			return nil, false, errors.New("dot lines: offsets not increasing")
		}
		off += int64(delta)
		offsets = append(offsets, off)
		b = b[n:]
	}
	return offsets, flags&1 != 0, nil
}
