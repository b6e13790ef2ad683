package testenv

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func greeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestRestartKeepsDataAndPorts(t *testing.T) {
	env := Start(t, Options{})
	lmtp := env.Addr("lmtp")
	if !strings.HasPrefix(lmtp, "127.0.0.1:") || strings.HasSuffix(lmtp, ":0") {
		t.Fatalf("lmtp address %q", lmtp)
	}
	if g := greeting(t, lmtp); !strings.HasPrefix(g, "220 mx.test.example LMTP") {
		t.Fatalf("greeting %q", g)
	}
	env.AddUser("alice@example.org", "pw")
	env.Restart()
	if env.Addr("lmtp") != lmtp {
		t.Errorf("lmtp moved from %s to %s", lmtp, env.Addr("lmtp"))
	}
	if g := greeting(t, env.Addr("smtp")); !strings.HasPrefix(g, "220 mx.test.example ESMTP") {
		t.Fatalf("greeting %q", g)
	}
	if msgs := env.Messages("alice@example.org", "INBOX"); len(msgs) != 0 {
		t.Fatalf("%d messages", len(msgs))
	}
	if !strings.Contains(env.Logs(), "msg=listening listener=lmtp") {
		t.Error("log does not show the lmtp listener")
	}
}

func TestBuildBinary(t *testing.T) {
	a := BuildBinary(t)
	if b := BuildBinary(t); a != b {
		t.Errorf("built twice: %s, %s", a, b)
	}
}
