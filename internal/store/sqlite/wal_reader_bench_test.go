package sqlite

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkShortReadsDuringLongRead: short reads while one read holds its
// snapshot and a writer keeps the log past walLimit, with the writer's
// rewind timing as in service. Each op is one short read; reported are
// the reads per second, the longest read, and the process's CPU time per
// read (from /proc/self/stat, all goroutines: the writer and the
// checkpointer too).
//
//	go test -run '^$' -bench ShortReadsDuringLongRead -benchtime 3000x ./internal/store/sqlite/
func BenchmarkShortReadsDuringLongRead(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: b.TempDir(), SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "a@example.org", "x")
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	release := make(chan struct{})
	done := walReaderHold(ctx, t, s, release)
	n := 0
	for s.WALSize() <= walLimit {
		n++
		if err := walReaderWrite(ctx, s, a.ID, "v", n, 256<<10); err != nil {
			b.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if err := walReaderWrite(ctx, s, a.ID, "w", i, 16<<10); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu0 := benchProcCPU()
	start := time.Now()
	var longest time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := walReaderRead(ctx, s); err != nil {
			b.Fatal(err)
		}
		longest = max(longest, time.Since(t0))
	}
	b.StopTimer()
	elapsed := time.Since(start)
	cpu := benchProcCPU() - cpu0
	close(stop)
	wg.Wait()
	close(release)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reads/s")
	b.ReportMetric(float64(longest.Milliseconds()), "longest-ms")
	if cpu >= 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// benchProcCPU is the user and system CPU time of this process so far,
// from /proc/self/stat (clock ticks of 10 ms), or -1.
func benchProcCPU() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(u+st) * 10 * time.Millisecond
}
