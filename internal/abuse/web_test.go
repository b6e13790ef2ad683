package abuse

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// webGet does one autoconfig request on a new connection and returns the
// status.
func webGet(t *testing.T, addr string) int {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + addr + "/mail/config-v1.1.xml?emailaddress=a@" + testenv.Domain)
	if err != nil {
		t.Fatalf("autoconfig: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebHostileClients: listen.web is on the internet, so it keeps the
// per-IP connection limit, answers plain HTTP, garbage and oversized
// requests with an error, and goes on serving.
func TestWebHostileClients(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Limits.ConnectionsPerIP = 4
	}})
	addr := env.Addr("web")

	// Connections held open by one client: the ones over the limit are
	// closed at once; the limit frees up when they go.
	var held []net.Conn
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tls.Client(extra, &tls.Config{InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Error("a fifth connection was served, want it closed")
	}
	extra.Close()
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + addr + "/mail/config-v1.1.xml?emailaddress=a@" + testenv.Domain)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the limit did not free up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Plain HTTP on the HTTPS port.
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "400") {
		t.Errorf("plain HTTP: %q, want a 400", line)
	}
	c.Close()

	// Garbage instead of a handshake.
	c, err = net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte(strings.Repeat("\x16\x03\x01\xff\xff garbage ", 100)))
	io.Copy(io.Discard, c)
	c.Close()

	// Huge headers and a huge autodiscover body.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/mail/config-v1.1.xml", nil)
	req.Header.Set("X-Filler", strings.Repeat("a", 64<<10))
	if resp, err := hc.Do(req); err == nil {
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB header: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	body := "<Autodiscover><Request><EMailAddress>a@" + testenv.Domain + "</EMailAddress>" + strings.Repeat("<x/>", 1<<20) + "</Request></Autodiscover>"
	resp, err := hc.Post("https://"+addr+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(body))
	if err == nil {
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("4 MiB autodiscover request: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}

	if code := webGet(t, addr); code != http.StatusOK {
		t.Fatalf("after the abuse: %d", code)
	}
}
