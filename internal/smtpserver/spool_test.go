package smtpserver

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// The spool gives back what it was given, in memory and past it in a
// file, whether filled by Write or by ReadFrom.
func TestSpool(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 4095, spoolMemory - 1, spoolMemory, spoolMemory + 1, 3*spoolMemory + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i/251)
		}
		for _, how := range []string{"write", "readfrom"} {
			sp := &spool{dir: t.TempDir()}
			switch how {
			case "write":
				for off := 0; off < len(data); off += 10000 {
					if _, err := sp.Write(data[off:min(off+10000, len(data))]); err != nil {
						t.Fatal(err)
					}
				}
			case "readfrom":
				if n, err := io.Copy(sp, iotest.HalfReader(bytes.NewReader(data))); err != nil || n != int64(size) {
					t.Fatalf("copy: %d %v", n, err)
				}
			}
			if sp.Size() != int64(size) {
				t.Fatalf("%s %d: size %d", how, size, sp.Size())
			}
			if (sp.f != nil) != (size > spoolMemory) {
				t.Fatalf("%s %d: in a file: %v", how, size, sp.f != nil)
			}
			got, err := io.ReadAll(io.NewSectionReader(sp, 0, sp.Size()))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s %d: read back %d bytes, %v", how, size, len(got), err)
			}
			sp.Close()
		}
	}
}

// TestSpoolEightBit: the spool notices a byte over 0x7f wherever it is,
// and only then, also in a spool whose memory a closed one had.
func TestSpoolEightBit(t *testing.T) {
	t.Parallel()
	for size := range 40 {
		for pos := -1; pos < size; pos++ {
			data := bytes.Repeat([]byte{0x7f}, size)
			if pos >= 0 {
				data[pos] = 0x80
			}
			sp := newSpool(t.TempDir())
			if _, err := sp.ReadFrom(iotest.OneByteReader(bytes.NewReader(data[:size/2]))); err != nil {
				t.Fatal(err)
			}
			sp.Write(data[size/2:])
			if sp.eightBit != (pos >= 0) {
				t.Fatalf("size %d, 8-bit byte at %d: eightBit %v", size, pos, sp.eightBit)
			}
			got, _ := io.ReadAll(sp.reader())
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %q, want %q", got, data)
			}
			sp.Close()
		}
	}
}
