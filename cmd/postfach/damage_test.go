package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesDamagedStore is item 18 of issue 11: a store that SQLite
// finds malformed was opened and served without a word. The real binary
// builds a store, stops; pages of the database file are then overwritten
// (or the file cut short), and `postfach serve` must refuse to start,
// saying what to do, and `postfach check` must report the damage.
func TestServeRefusesDamagedStore(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"middle pages", "truncated"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			t.Parallel()
			cfg := storeConfig(t, "")
			dataDir := filepath.Join(filepath.Dir(cfg), "data")
			if r := runBin(t, "secret password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
				t.Fatal(r.stderr)
			}
			srv := startServe(t, cfg)
			damageDeliverMany(t, srv.Addr("lmtp"), 300)
			srv.stop()
			if r := runBin(t, "", "check", "--config", cfg); r.code != 0 {
				t.Fatalf("check of the intact store: %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			damageDatabase(t, filepath.Join(dataDir, "postfach.db"), how)

			r := runBin(t, "", "serve", "--config", cfg)
			if r.code == 0 {
				t.Fatalf("serve ran on a damaged store and exited 0:\n%s", r.stderr)
			}
			for _, want := range []string{"damaged", "postfach check", "docs/running.md"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("serve's refusal does not mention %q:\n%s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "postfach started") {
				t.Errorf("serve started on a damaged store:\n%s", r.stderr)
			}
			c := runBin(t, "", "check", "--config", cfg)
			if c.code == 0 || !strings.Contains(c.stdout+c.stderr, "database") {
				t.Errorf("check of the damaged store: exit %d\n%s%s", c.code, c.stdout, c.stderr)
			}
		})
	}
}

// damageDeliverMany delivers n small messages to alice over one LMTP
// session.
func damageDeliverMany(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	reply := func(want string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("lmtp: %v", err)
			}
			if len(l) < 4 || l[3] != '-' {
				if !strings.HasPrefix(l, want) {
					t.Fatalf("lmtp: %q, want %s", l, want)
				}
				return
			}
		}
	}
	reply("220")
	fmt.Fprintf(c, "LHLO test\r\n")
	reply("250")
	for i := range n {
		fmt.Fprintf(c, "MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
		reply("250")
		reply("250")
		reply("354")
		fmt.Fprintf(c, "Subject: message %d\r\n\r\n%s\r\n.\r\n", i, strings.Repeat("some text ", 300))
		reply("250")
	}
}

// damageDatabase overwrites the middle third of the pages of an SQLite
// file with random bytes, or cuts it to half its pages.
func damageDatabase(t *testing.T, path, how string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 100 {
		t.Fatalf("database of %d bytes", len(data))
	}
	pageSize := int(binary.BigEndian.Uint16(data[16:18]))
	pages := len(data) / pageSize
	if pages < 30 {
		t.Fatalf("database of %d pages: too small to damage meaningfully", pages)
	}
	switch how {
	case "middle pages":
		rng := rand.New(rand.NewPCG(3, 4))
		for i := pages / 3 * pageSize; i < 2*pages/3*pageSize; i++ {
			data[i] = byte(rng.Uint32())
		}
	case "truncated":
		data = data[:pages/2*pageSize]
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
