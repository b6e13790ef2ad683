package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// fakeProc writes a /proc entry: stat with ppid and CPU ticks, and
// smaps_rollup with Rss and Pss.
func fakeProc(t *testing.T, root string, pid, ppid int, ticks [4]int, rss, pss int) {
	t.Helper()
	dir := filepath.Join(root, itoaInt(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces and parentheses.
	stat := itoaInt(pid) + " (imap (x) y) S " + itoaInt(ppid) + " 1 1 0 -1 4194560 100 0 0 0 " +
		itoaInt(ticks[0]) + " " + itoaInt(ticks[1]) + " " + itoaInt(ticks[2]) + " " + itoaInt(ticks[3]) + " 20 0 1 0 100 1000 10\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	smaps := "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  " + itoaInt(rss) + " kB\nPss:  " + itoaInt(pss) + " kB\nPss_Anon:  1 kB\n"
	if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(smaps), 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoaInt(n int) string { return strconv.Itoa(n) }

func TestProcSetTree(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 100, 1, [4]int{10, 5, 100, 50}, 4000, 2000) // master
	fakeProc(t, root, 101, 100, [4]int{1, 1, 0, 0}, 3000, 500)    // child
	fakeProc(t, root, 102, 101, [4]int{2, 0, 0, 0}, 3000, 400)    // grandchild
	fakeProc(t, root, 200, 1, [4]int{99, 99, 0, 0}, 9999, 9999)   // unrelated
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}

	tree := &ProcSet{PIDs: []int{100}, Tree: true, Root: root}
	pids, err := tree.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pids)
	if !slices.Equal(pids, []int{100, 101, 102}) {
		t.Fatalf("tree pids %v", pids)
	}
	m, err := tree.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if m != (Mem{Procs: 3, RSS: 10000, PSS: 2900}) {
		t.Fatalf("memory %+v", m)
	}
	cpu, err := tree.CPU()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(165+2+2) * 10 * time.Millisecond; cpu != want {
		t.Fatalf("cpu %v, want %v", cpu, want)
	}

	one := &ProcSet{PIDs: []int{101, 999}, Root: root}
	if m, err := one.Memory(); err != nil || m != (Mem{Procs: 1, RSS: 3000, PSS: 500}) {
		t.Fatalf("single pid: %+v %v", m, err)
	}
	if _, err := (&ProcSet{PIDs: []int{999}, Root: root}).Memory(); err == nil {
		t.Fatal("want an error for a missing process")
	}
	if !(&ProcSet{}).Empty() || !(*ProcSet)(nil).Empty() {
		t.Fatal("Empty")
	}
}

func TestProcSetSelf(t *testing.T) {
	// The real /proc: this test process has memory and CPU time.
	ps := &ProcSet{PIDs: []int{os.Getpid()}}
	m, err := ps.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if m.Procs != 1 || m.RSS <= 0 || m.PSS <= 0 {
		t.Fatalf("memory %+v", m)
	}
	if _, err := ps.CPU(); err != nil {
		t.Fatal(err)
	}
}
