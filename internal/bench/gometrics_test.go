package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const promSample = `# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds_sum 0.0012
go_gc_duration_seconds_count %d
go_goroutines 16
go_memstats_heap_alloc_bytes 3.1457280e+07
go_memstats_heap_inuse_bytes 9.6468992e+07
go_memstats_stack_inuse_bytes 4.5088768e+07
go_memstats_heap_alloc_bytes_total 1
`

func TestParseGoMem(t *testing.T) {
	m, err := parseGoMem(bufio.NewScanner(strings.NewReader(fmt.Sprintf(promSample, 11))))
	if err != nil {
		t.Fatal(err)
	}
	want := GoMem{HeapAlloc: 31457280, HeapInuse: 96468992, StackInuse: 45088768, GCs: 11}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	if _, err := parseGoMem(bufio.NewScanner(strings.NewReader("process_resident_memory_bytes 1\n"))); err == nil {
		t.Fatal("want an error without Go metrics")
	}
	if _, err := parseGoMem(bufio.NewScanner(strings.NewReader("go_memstats_heap_alloc_bytes x\n"))); err == nil {
		t.Fatal("want an error for a bad value")
	}
}

func TestWaitGC(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The third reading sees a new collection.
		gcs := 11
		if calls.Add(1) >= 3 {
			gcs = 12
		}
		fmt.Fprintf(w, promSample, gcs)
	}))
	defer srv.Close()
	first, err := ReadGoMem(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	m, collected, err := waitGC(context.Background(), srv.URL, first, time.Minute)
	if err != nil || !collected || m.GCs != 12 {
		t.Fatalf("waitGC: %+v %v %v", m, collected, err)
	}
	// No collection within the bound: the last reading, not collected.
	m, collected, err = waitGC(context.Background(), srv.URL, m, time.Millisecond)
	if err != nil || collected {
		t.Fatalf("bounded waitGC: %+v %v %v", m, collected, err)
	}
	if _, err := ReadGoMem(context.Background(), srv.URL+"/nothing\x7f"); err == nil {
		t.Fatal("want an error for a bad URL")
	}
}
