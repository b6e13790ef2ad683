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
