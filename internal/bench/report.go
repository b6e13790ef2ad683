package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Better says which direction of a metric is an improvement.
type Better string

// Directions of a metric.
const (
	Higher Better = "higher"
	Lower  Better = "lower"
	Info   Better = "" // informational, not compared
)

// Metric is one headline figure of a run.
type Metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Better Better  `json:"better,omitempty"`
}

// CPUUsage is processor time spent over a run.
type CPUUsage struct {
	// Seconds of user+system time.
	Seconds float64 `json:"seconds"`
	// Cores is Seconds divided by the run's wall time: 1.0 is one core
	// fully busy.
	Cores float64 `json:"cores"`
}

// Result is the outcome of one workload run against one server.
type Result struct {
	Bench string `json:"bench"`
	// Case names the comparable configuration (same Case, different
	// Label = side by side).
	Case string `json:"case"`
	// Label names the server ("postfach", "dovecot").
	Label   string         `json:"label"`
	Addr    string         `json:"addr"`
	Time    time.Time      `json:"time"`
	Seconds float64        `json:"seconds"`
	Params  map[string]any `json:"params,omitempty"`
	Metrics []Metric       `json:"metrics"`
	Ops     []OpSummary    `json:"ops,omitempty"`
	// Checks is what the consistency checker found (imap-shared).
	Checks *CheckReport `json:"checks,omitempty"`
	// ClientCPU is this tool's own CPU time, to show it was not the
	// bottleneck.
	ClientCPU CPUUsage `json:"client_cpu"`
	// ServerCPU is the observed server processes' CPU time, when PIDs
	// were given.
	ServerCPU *CPUUsage `json:"server_cpu,omitempty"`
	// Unsupported is set when the server lacks what the workload needs
	// (for example COMPRESS=DEFLATE); Metrics are then empty.
	Unsupported string   `json:"unsupported,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// AddMetric appends a metric.
func (r *Result) AddMetric(name string, v float64, unit string, b Better) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, Better: b})
}

// Metric returns the named metric and whether it exists.
func (r *Result) Metric(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Notef appends a note.
func (r *Result) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// cpuClock measures this process's CPU time and, optionally, a server's.
type cpuClock struct {
	wall   time.Time
	self   time.Duration
	server time.Duration
	procs  *ProcSet
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(procs *ProcSet) *cpuClock {
	c := &cpuClock{wall: time.Now(), self: selfCPU(), procs: procs}
	if procs != nil && !procs.Empty() {
		c.server, _ = procs.CPU()
	}
	return c
}

// stop fills r's CPU figures.
func (c *cpuClock) stop(r *Result) {
	wall := time.Since(c.wall).Seconds()
	// Below a second, tick-granular /proc figures say nothing per second.
	cores := func(s float64) float64 {
		if wall < 1 {
			return 0
		}
		return s / wall
	}
	self := (selfCPU() - c.self).Seconds()
	r.ClientCPU = CPUUsage{Seconds: self, Cores: cores(self)}
	if c.procs != nil && !c.procs.Empty() {
		if s, err := c.procs.CPU(); err == nil {
			d := (s - c.server).Seconds()
			r.ServerCPU = &CPUUsage{Seconds: d, Cores: cores(d)}
		}
	}
}

// WriteTable writes r for a human: a heading, the metrics, the per-
// operation table and the CPU figures.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "== %s [%s] %s  %s  %.1f s\n", r.Bench, r.Case, r.Label, r.Addr, r.Seconds)
	if len(r.Params) > 0 {
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, r.Params[k]))
		}
		fmt.Fprintf(w, "   %s\n", strings.Join(parts, " "))
	}
	if r.Unsupported != "" {
		fmt.Fprintf(w, "   unsupported: %s\n", r.Unsupported)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "   %s\t%s\t %s\t\n", m.Name, fmtNum(m.Value), m.Unit)
	}
	tw.Flush()
	if len(r.Ops) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "   op\tcount\terrors\tper s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tMB/s\t")
		for _, o := range r.Ops {
			fmt.Fprintf(tw, "   %s\t%d\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t\n",
				o.Op, o.Count, o.Errors, o.PerSec, o.P50ms, o.P90ms, o.P99ms, o.MaxMs, o.MBytesS)
		}
		tw.Flush()
	}
	if r.Checks != nil {
		r.Checks.Write(w)
	}
	fmt.Fprintf(w, "   client CPU %.2f s = %.2f cores", r.ClientCPU.Seconds, r.ClientCPU.Cores)
	if r.ServerCPU != nil {
		fmt.Fprintf(w, "; server CPU %.2f s = %.2f cores", r.ServerCPU.Seconds, r.ServerCPU.Cores)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "   note: %s\n", n)
	}
}

// WriteJSON writes r as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.1f", v)
	case v >= 1 || v <= -1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
