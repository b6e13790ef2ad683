package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/minio/minio-go/v7"

	"github.com/postfach/postfach/internal/blob/s3/s3test"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// s3Message is a message large enough to go to the blob store (over the
// 128 KiB kept in the database), in two MIME parts, with lines that begin
// with "." (POP3 must stuff them) in both.
func s3Message(n int) string {
	var b strings.Builder
	b.WriteString("From: sender@remote.example\r\nSubject: large\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n")
	for i := 0; b.Len() < n/2; i++ {
		if i%100 == 0 {
			b.WriteString(".a line that begins with a dot\r\n")
		}
		fmt.Fprintf(&b, "line %d of the first part, text text text text\r\n", i)
	}
	b.WriteString("--BB\r\nContent-Type: text/plain\r\n\r\n")
	for i := 0; b.Len() < n; i++ {
		if i%300 == 0 {
			b.WriteString("..two dots\r\n")
		}
		fmt.Fprintf(&b, "second part line %d\r\n", i)
	}
	b.WriteString("--BB--\r\n")
	return b.String()
}

// TestServerBodiesInS3: a server with [blob] backend = "s3" keeps large
// bodies in the bucket and none under data_dir, and IMAP (BODY[],
// BODY[1], a partial fetch) and POP3 (RETR, with its dot-stuffing; TOP)
// send them byte for byte on plain connections, where a body in a file
// would go out with sendfile(2), before and after a restart.
func TestServerBodiesInS3(t *testing.T) {
	t.Parallel()
	opt := s3test.Bucket(t)
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Blob = config.Blob{Backend: "s3", Endpoint: opt.Endpoint, Bucket: opt.Bucket, AccessKey: opt.AccessKey, SecretKey: opt.SecretKey}
	}})
	env.AddUser("alice@example.org", "pw")
	msgs := []string{s3Message(400 << 10), s3Message(3 << 20), "Subject: small\r\n\r\nkept in the database\r\n"}
	for _, m := range msgs {
		// RFC 5321 §4.5.2: lines that begin with "." get one more.
		stuffed := strings.ReplaceAll(strings.TrimSuffix(m, "\r\n"), "\r\n.", "\r\n..")
		lmtpDeliver(t, env, stuffed, []string{"alice@example.org"}, "250 2.0.0")
	}
	stored := env.Messages("alice@example.org", "INBOX")
	if len(stored) != 3 {
		t.Fatalf("%d messages stored, want 3", len(stored))
	}
	for i, m := range msgs {
		if !bytes.HasSuffix(stored[i], []byte(m)) {
			t.Fatalf("message %d stored differs", i+1)
		}
	}
	objects := 0
	for obj := range s3test.Client(t).ListObjects(context.Background(), opt.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		objects++
	}
	if objects != 2 {
		t.Errorf("%d objects in the bucket, want 2 (the two large bodies)", objects)
	}
	files := 0
	filepath.WalkDir(filepath.Join(env.Config.DataDir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files != 0 {
		t.Errorf("%d body files under data_dir with blob.backend = s3", files)
	}

	check := func() {
		t.Helper()
		s3CheckIMAP(t, env, stored)
		s3CheckPOP3(t, env, stored)
	}
	check()
	env.Restart()
	check()
}

func s3CheckIMAP(t *testing.T, env *testenv.Env, stored [][]byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(env.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	part1 := &imap.FetchItemBodySection{Peek: true, Part: []int{1}}
	partial := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 100000, Size: 70000}}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole, part1, partial}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("FETCH returned %d messages", len(msgs))
	}
	for i, m := range msgs {
		want := stored[i]
		if got := m.FindBodySection(whole); !bytes.Equal(got, want) {
			t.Errorf("message %d: BODY[] has %d bytes, differs from the stored %d", i+1, len(got), len(want))
		}
		if got := m.FindBodySection(partial); !bytes.Equal(got, want[min(100000, len(want)):min(170000, len(want))]) {
			t.Errorf("message %d: BODY[]<100000.70000> differs (%d bytes)", i+1, len(got))
		}
		if i < 2 {
			p1 := m.FindBodySection(part1)
			if len(p1) < 1000 || !bytes.Contains(want, p1) || !bytes.HasPrefix(p1, []byte(".a line that begins with a dot\r\n")) {
				t.Errorf("message %d: BODY[1] wrong (%d bytes)", i+1, len(p1))
			}
		}
	}
}

func s3CheckPOP3(t *testing.T, env *testenv.Env, stored [][]byte) {
	t.Helper()
	c := env.Dial("pop3")
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("pop3 read: %v", err)
		}
		return l
	}
	cmd := func(s string) string {
		io.WriteString(c, s+"\r\n")
		l := line()
		if !strings.HasPrefix(l, "+OK") {
			t.Fatalf("pop3 %s: %q", s, l)
		}
		return l
	}
	// multi reads a multi-line answer and undoes the dot-stuffing
	// (RFC 1939 §3).
	multi := func() []byte {
		var b bytes.Buffer
		for {
			l := line()
			if l == ".\r\n" {
				return b.Bytes()
			}
			b.WriteString(strings.TrimPrefix(l, "."))
		}
	}
	line()
	cmd("USER alice@example.org")
	cmd("PASS pw")
	for i, want := range stored {
		cmd("RETR " + strconv.Itoa(i+1))
		if got := multi(); !bytes.Equal(got, want) {
			t.Errorf("RETR %d: %d bytes, differs from the stored %d", i+1, len(got), len(want))
		}
		cmd("TOP " + strconv.Itoa(i+1) + " 3")
		top := multi()
		hdr, _, _ := bytes.Cut(want, []byte("\r\n\r\n"))
		if !bytes.HasPrefix(top, append(hdr, "\r\n\r\n"...)) {
			t.Errorf("TOP %d: header differs", i+1)
		}
	}
	cmd("QUIT")
}
