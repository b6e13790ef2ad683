package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcSet names the server processes whose memory and CPU a workload
// reads from /proc: the given PIDs and, with Tree, all their descendants
// (Dovecot forks a process per IMAP session; the set is walked again at
// every reading).
type ProcSet struct {
	PIDs []int
	Tree bool
	// Root is the proc file system, "/proc" when empty (tests point it
	// elsewhere).
	Root string
}

// Empty reports whether no PID is named.
func (p *ProcSet) Empty() bool { return p == nil || len(p.PIDs) == 0 }

func (p *ProcSet) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

// Mem is a memory reading summed over a ProcSet, in KiB.
type Mem struct {
	Procs int   `json:"procs"`
	RSS   int64 `json:"rss_kib"`
	PSS   int64 `json:"pss_kib"`
}

// statFields returns the fields of /proc/PID/stat after the command name
// (field 3, the state, is index 0).
func statFields(b []byte) ([]string, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("short stat line")
	}
	return f, nil
}

// Resolve returns the PIDs of the set that exist now.
func (p *ProcSet) Resolve() ([]int, error) {
	if !p.Tree {
		var out []int
		for _, pid := range p.PIDs {
			if _, err := os.Stat(filepath.Join(p.root(), strconv.Itoa(pid))); err == nil {
				out = append(out, pid)
			}
		}
		return out, nil
	}
	ents, err := os.ReadDir(p.root())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.root(), err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.root(), e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		f, err := statFields(b)
		if err != nil {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), p.PIDs...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out, nil
}

// Memory sums Rss and Pss (from smaps_rollup) over the set's processes.
func (p *ProcSet) Memory() (Mem, error) {
	pids, err := p.Resolve()
	if err != nil {
		return Mem{}, err
	}
	var m Mem
	for _, pid := range pids {
		f, err := os.Open(filepath.Join(p.root(), strconv.Itoa(pid), "smaps_rollup"))
		if err != nil {
			continue // exited meanwhile
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "Rss:"):
				m.RSS += kib(line)
			case strings.HasPrefix(line, "Pss:"):
				m.PSS += kib(line)
			}
		}
		f.Close()
		m.Procs++
	}
	if m.Procs == 0 {
		return m, fmt.Errorf("no process of %v is running", p.PIDs)
	}
	return m, nil
}

// kib parses "Rss:   1234 kB".
func kib(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.ParseInt(f[1], 10, 64)
	return v
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPU returns the user+system time of the set's processes, including
// their reaped children (so a Dovecot process that exits still counts
// in its parent).
func (p *ProcSet) CPU() (time.Duration, error) {
	pids, err := p.Resolve()
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join(p.root(), strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		f, err := statFields(b)
		if err != nil {
			continue
		}
		// Fields 14-17 of stat(5): utime stime cutime cstime.
		for _, s := range f[11:15] {
			v, _ := strconv.ParseInt(s, 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
