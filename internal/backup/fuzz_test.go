package backup

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseManifest feeds ParseManifest arbitrary data: it never panics,
// and what it accepts names every kind once, in its own file.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"postfach-backup","version":1,"files":[]}`))
	f.Add([]byte(`{"format":"postfach-backup","version":2}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if len(m.Files) != len(Kinds) {
			t.Fatalf("accepted %d files", len(m.Files))
		}
		for _, k := range Kinds {
			if fi := m.File(k); fi.Name != k+".jsonl" {
				t.Fatalf("kind %s in %q", k, fi.Name)
			}
		}
	})
}

// FuzzReadRecords feeds a record file arbitrary bytes: reading never
// panics, and a file whose hash does not match the manifest is refused.
func FuzzReadRecords(f *testing.F) {
	f.Add([]byte(`{"account":1,"mailbox":2,"uid":3,"modseq":4,"internal_date":"2020-01-02T03:04:05+01:00","size":5,"sha256":"x"}` + "\n"))
	f.Add([]byte("{\"uid\":1}"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "messages.jsonl"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		fi := FileInfo{Kind: KindMessages, Name: "messages.jsonl", SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}
		err := readRecords(dir, fi, func(*MessageRecord) error { return nil })
		if err == nil {
			t.Fatal("a file that does not match its manifest entry was accepted")
		}
	})
}
