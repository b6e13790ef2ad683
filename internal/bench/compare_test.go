package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		err  bool
	}{
		{"mixed:commands_per_s:ratio>=2", Target{"mixed", "commands_per_s", "ratio>=", 2}, false},
		{"idle-10000:mem_per_conn_kib:value<=8", Target{"idle-10000", "mem_per_conn_kib", "value<=", 8}, false},
		{"x:y:value>=0.5", Target{"x", "y", "value>=", 0.5}, false},
		{"x:y:ratio>2", Target{}, true},
		{"x:y", Target{}, true},
		{"x:y:ratio>=two", Target{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestCompare(t *testing.T) {
	mk := func(label, c string, ms ...Metric) Result {
		return Result{Bench: "x", Case: c, Label: label, Metrics: ms}
	}
	results := []Result{
		{Bench: "load", Case: "load", Label: "postfach"},
		mk("postfach", "mixed", Metric{"commands_per_s", 3000, "cmd/s", Higher}, Metric{"command_p99", 5, "ms", Lower}, Metric{"errors", 0, "", Info}),
		mk("dovecot", "mixed", Metric{"commands_per_s", 1000, "cmd/s", Higher}, Metric{"command_p99", 20, "ms", Lower}),
		mk("postfach", "login", Metric{"logins_per_s", 100, "login/s", Higher}),
		mk("dovecot", "login", Metric{"logins_per_s", 80, "login/s", Higher}),
		mk("dovecot", "idle", Metric{"mem_per_conn_kib", 600, "KiB", Lower}),
		mk("postfach", "idle-neg", Metric{"mem_per_conn_kib", -3, "KiB", Lower}),
		{Bench: "idle", Case: "compress", Label: "postfach", Unsupported: "COMPRESS=DEFLATE: unsupported"},
		mk("dovecot", "compress", Metric{"mem_per_conn_kib", 900, "KiB", Lower}),
	}
	var jsonl bytes.Buffer
	for i := range results {
		if err := results[i].WriteJSON(&jsonl); err != nil {
			t.Fatal(err)
		}
	}
	jsonl.WriteString("a table line, not JSON\n")
	back, err := ReadResults(&jsonl)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(results) {
		t.Fatalf("read %d results, want %d", len(back), len(results))
	}
	var out bytes.Buffer
	Compare(&out, back, "postfach", "dovecot", []Target{
		{"mixed", "commands_per_s", "ratio>=", 2},
		{"login", "logins_per_s", "ratio>=", 2},
		{"idle", "mem_per_conn_kib", "value<=", 8},
		{"idle-neg", "mem_per_conn_kib", "value<=", 8},
	})
	table := out.String()
	for _, want := range []string{
		"| mixed | commands_per_s | 3000 cmd/s | 1000 cmd/s | 3.00× | ≥ 2× | yes |",
		"| mixed | command_p99 | 5.00 ms | 20.00 ms | 4.00× |  |  |",
		"| login | logins_per_s | 100.0 login/s | 80.00 login/s | 1.25× | ≥ 2× | **no** |",
		"| idle | mem_per_conn_kib | — | 600.0 KiB | — | ≤ 8 | not measured |",
		"| compress | mem_per_conn_kib | unsupported | 900.0 KiB | — |  |  |",
		"| idle-neg | mem_per_conn_kib | -3.00 KiB | — | — | ≤ 8 | invalid (negative) |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "| errors |") || strings.Contains(table, "| load |") {
		t.Errorf("informational metrics or load runs in the table:\n%s", table)
	}
}
