package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadResults reads JSON lines written by Result.WriteJSON; other lines
// are skipped.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("parse result: %w", err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

// Target is a goal for one metric of one case: either a ratio between
// the two servers (Ratio, "a is at least N times better") or a bound on
// the first server's value (Max or Min).
type Target struct {
	Case, Metric string
	Kind         string // "ratio>=", "value<=", "value>="
	N            float64
}

// ParseTarget parses "CASE:METRIC:ratio>=2", "CASE:METRIC:value<=8" or
// "CASE:METRIC:value>=N".
func ParseTarget(s string) (Target, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Target{}, fmt.Errorf("target %q: want CASE:METRIC:ratio>=N|value<=N|value>=N", s)
	}
	t := Target{Case: parts[0], Metric: parts[1]}
	for _, k := range []string{"ratio>=", "value<=", "value>="} {
		if rest, ok := strings.CutPrefix(parts[2], k); ok {
			n, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				return Target{}, fmt.Errorf("target %q: %w", s, err)
			}
			t.Kind, t.N = k, n
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("target %q: want ratio>=N, value<=N or value>=N", s)
}

// String renders the goal as in the report ("≥ 2×", "≤ 8").
func (t Target) String() string {
	switch t.Kind {
	case "ratio>=":
		return fmt.Sprintf("≥ %g×", t.N)
	case "value<=":
		return fmt.Sprintf("≤ %g", t.N)
	default:
		return fmt.Sprintf("≥ %g", t.N)
	}
}

// advantage returns how many times better a is than b for a metric
// (>1: a is better), and false when it cannot be computed.
func advantage(m Better, a, b float64) (float64, bool) {
	switch m {
	case Higher:
		if b == 0 {
			return 0, false
		}
		return a / b, true
	case Lower:
		if a == 0 {
			return 0, false
		}
		return b / a, true
	}
	return 0, false
}

// Compare writes a Markdown table of every case: each compared metric of
// server a and server b, a's advantage, and the target with its verdict.
func Compare(w io.Writer, results []Result, a, b string, targets []Target) {
	type pair struct{ a, b *Result }
	var order []string
	cases := map[string]*pair{}
	for i := range results {
		r := &results[i]
		if r.Bench == "load" {
			continue
		}
		p := cases[r.Case]
		if p == nil {
			p = &pair{}
			cases[r.Case] = p
			order = append(order, r.Case)
		}
		switch r.Label {
		case a:
			p.a = r
		case b:
			p.b = r
		}
	}
	tmap := map[string]Target{}
	for _, t := range targets {
		tmap[t.Case+"\x00"+t.Metric] = t
	}
	fmt.Fprintf(w, "| case | metric | %s | %s | %s advantage | target | met |\n", a, b, a)
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|---|")
	val := func(r *Result, name string) (Metric, string) {
		if r == nil {
			return Metric{}, "—"
		}
		if r.Unsupported != "" {
			return Metric{}, "unsupported"
		}
		m, ok := r.Metric(name)
		if !ok {
			return Metric{}, "—"
		}
		return m, fmtNum(m.Value) + " " + m.Unit
	}
	for _, c := range order {
		p := cases[c]
		var names []string
		seen := map[string]bool{}
		for _, r := range []*Result{p.a, p.b} {
			if r == nil {
				continue
			}
			for _, m := range r.Metrics {
				if m.Better != Info && !seen[m.Name] {
					seen[m.Name] = true
					names = append(names, m.Name)
				}
			}
		}
		if len(names) == 0 {
			names = []string{"(no result)"}
		}
		for _, name := range names {
			ma, sa := val(p.a, name)
			mb, sb := val(p.b, name)
			adv := "—"
			okA := p.a != nil && p.a.Unsupported == "" && sa != "—"
			okB := p.b != nil && p.b.Unsupported == "" && sb != "—"
			var ratio float64
			var haveRatio bool
			if okA && okB {
				if ratio, haveRatio = advantage(ma.Better, ma.Value, mb.Value); haveRatio {
					adv = fmt.Sprintf("%.2f×", ratio)
				}
			}
			target, met := "", ""
			if t, ok := tmap[c+"\x00"+name]; ok {
				target = t.String()
				switch {
				case t.Kind == "ratio>=" && haveRatio:
					met = verdict(ratio >= t.N)
				case t.Kind == "value<=" && okA && ma.Value < 0:
					met = "invalid (negative)"
				case t.Kind == "value<=" && okA:
					met = verdict(ma.Value <= t.N)
				case t.Kind == "value>=" && okA:
					met = verdict(ma.Value >= t.N)
				default:
					met = "not measured"
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", c, name, sa, sb, adv, target, met)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| case | server | client CPU (cores) | server CPU (cores) | notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|")
	for _, c := range order {
		p := cases[c]
		for _, r := range []*Result{p.a, p.b} {
			if r == nil {
				continue
			}
			cli, srv := fmt.Sprintf("%.2f", r.ClientCPU.Cores), "—"
			if r.ServerCPU != nil {
				srv = fmt.Sprintf("%.2f", r.ServerCPU.Cores)
			}
			notes := strings.Join(r.Notes, "; ")
			if r.Unsupported != "" {
				notes = "unsupported: " + r.Unsupported
				cli, srv = "—", "—"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", c, r.Label, cli, srv, strings.ReplaceAll(notes, "|", "/"))
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
