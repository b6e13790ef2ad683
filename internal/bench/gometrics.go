package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GoMem is the Go runtime's own account of a server's memory, read from
// its Prometheus endpoint (the standard Go collector's go_memstats_*
// gauges). RSS cannot tell live memory from garbage the runtime has not
// returned to the kernel yet; these figures can, right after a GC.
type GoMem struct {
	HeapAlloc  float64 `json:"heap_alloc"`
	HeapInuse  float64 `json:"heap_inuse"`
	StackInuse float64 `json:"stack_inuse"`
	// GCs is the number of completed collections.
	GCs float64 `json:"gcs"`
}

// ReadGoMem fetches and parses url (a Prometheus text exposition).
func ReadGoMem(ctx context.Context, url string) (GoMem, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return GoMem{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GoMem{}, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return GoMem{}, fmt.Errorf("read metrics: %s", resp.Status)
	}
	return parseGoMem(bufio.NewScanner(resp.Body))
}

func parseGoMem(sc *bufio.Scanner) (GoMem, error) {
	var m GoMem
	found := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		var dst *float64
		switch f[0] {
		case "go_memstats_heap_alloc_bytes":
			dst = &m.HeapAlloc
		case "go_memstats_heap_inuse_bytes":
			dst = &m.HeapInuse
		case "go_memstats_stack_inuse_bytes":
			dst = &m.StackInuse
		case "go_gc_duration_seconds_count":
			dst = &m.GCs
		default:
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return m, fmt.Errorf("metric %s: %w", f[0], err)
		}
		*dst = v
		found++
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read metrics: %w", err)
	}
	if found < 4 {
		return m, fmt.Errorf("no Go runtime metrics (go_memstats_*, go_gc_duration_seconds) at the endpoint")
	}
	return m, nil
}

// waitGC polls url until the server has completed a collection after
// since (its GCs count grew) or maxWait passes, and returns the last
// reading and whether a collection happened. Go forces one every two
// minutes even when idle.
func waitGC(ctx context.Context, url string, since GoMem, maxWait time.Duration) (GoMem, bool, error) {
	deadline := time.Now().Add(maxWait)
	for {
		m, err := ReadGoMem(ctx, url)
		if err != nil {
			return m, false, err
		}
		if m.GCs > since.GCs {
			return m, true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return m, false, nil
		}
		sleepCtx(ctx, 2*time.Second)
	}
}
