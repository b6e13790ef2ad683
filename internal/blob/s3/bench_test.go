package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/blob"
	"github.com/postfach/postfach/internal/blob/s3"
	"github.com/postfach/postfach/internal/blob/s3/s3test"
)

// The blob benchmarks put and read bodies of a few sizes on the file
// driver and on S3, and report besides the rate the CPU time per
// operation of this process and, for S3, of the gateway (from /proc; the
// gateway's pid is in $POSTFACH_TEST_S3_DIR/pid, written by
// .ci/versitygw). On a shared machine compare them by alternating runs:
//
//	eval "$(.ci/versitygw start)"
//	for i in 1 2 3; do for d in File S3; do
//	  go test -run '^$' -bench "Blob$d" -benchtime 40x ./internal/blob/s3; done; done

var benchSizes = []int{256 << 10, 4 << 20, 12 << 20}

func BenchmarkBlobFile(b *testing.B) {
	benchBlobs(b, func(b *testing.B) blob.Store {
		s, err := blob.NewFileStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 0)
}

func BenchmarkBlobS3(b *testing.B) {
	gw := 0
	if dir := os.Getenv("POSTFACH_TEST_S3_DIR"); dir != "" {
		if data, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			gw, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
	}
	benchBlobs(b, func(b *testing.B) blob.Store {
		s, err := s3.New(context.Background(), s3test.Bucket(b))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, gw)
}

func benchBlobs(b *testing.B, newStore func(*testing.B) blob.Store, gw int) {
	ctx := context.Background()
	for _, size := range benchSizes {
		name := strconv.Itoa(size>>10) + "KiB"
		line := []byte("a line of a message body, text text text\r\n")
		data := bytes.Repeat(line, size/len(line)+1)[:size]
		b.Run("Put"+name, func(b *testing.B) {
			s := newStore(b)
			b.SetBytes(int64(size))
			cpu := startCPU(gw)
			for i := 0; b.Loop(); i++ {
				// Each body differs (its first bytes), so every put stores.
				binary.BigEndian.PutUint64(data, uint64(i))
				sum := sha256.Sum256(data)
				w, err := s.Create(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 64<<10)
					w.Write(rest[:n])
					rest = rest[n:]
				}
				if err := w.Commit(ctx, hex.EncodeToString(sum[:])); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
		b.Run("Get"+name, func(b *testing.B) {
			s := newStore(b)
			sum := sha256.Sum256(data)
			id := hex.EncodeToString(sum[:])
			w, _ := s.Create(ctx)
			w.Write(data)
			if err := w.Commit(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			buf := make([]byte, 32<<10)
			cpu := startCPU(gw)
			for b.Loop() {
				r, err := s.Open(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(r, 0, r.Size()), buf); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
			cpu.report(b)
		})
	}
}

// cpuMark holds the CPU times (utime+stime, clock ticks) of this process
// and of the gateway at the start of a benchmark.
type cpuMark struct {
	gw        int
	self, gwT int64
}

func startCPU(gw int) cpuMark {
	return cpuMark{gw: gw, self: procTicks("self"), gwT: procTicks(strconv.Itoa(gw))}
}

func (m cpuMark) report(b *testing.B) {
	const tick = 10.0 // ms per clock tick (USER_HZ 100)
	n := float64(b.N)
	b.ReportMetric(float64(procTicks("self")-m.self)*tick/n, "cpu-ms/op")
	if m.gw > 0 {
		b.ReportMetric(float64(procTicks(strconv.Itoa(m.gw))-m.gwT)*tick/n, "gw-cpu-ms/op")
	}
}

// procTicks reads utime+stime of /proc/PID/stat; 0 when unreadable.
func procTicks(pid string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; count after its ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}
