package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Listen.LMTP != "127.0.0.1:2424" || c.MaxMessageSize != 50<<20 || c.POP3.Delete != "hide" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(t *testing.T, c *Config)
		wantErr string // substring; "" means success
		line    int
	}{
		{name: "empty", in: "", check: func(t *testing.T, c *Config) {
			if c.DataDir != "postfach-data" {
				t.Errorf("data_dir = %q", c.DataDir)
			}
		}},
		{name: "issue example", in: `
data_dir = "postfach-data"
hostname = "mail.example.org"
domains = ["example.org"]
max_message_size = "50MiB"

[listen]
imap = "127.0.0.1:1143"
lmtp = "unix:lmtp.sock"
smtp = ""

[tls]
cert = ""
key = ""

[auth]
allow_insecure = true
`, check: func(t *testing.T, c *Config) {
			if c.Hostname != "mail.example.org" || c.Domains[0] != "example.org" || c.Listen.SMTP != "" ||
				!c.Auth.AllowInsecure || c.Listen.LMTP != "unix:lmtp.sock" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "sizes and durations", in: "max_message_size = \"10MB\"\n[limits]\nsmtp_data_timeout = \"90s\"\n", check: func(t *testing.T, c *Config) {
			if c.MaxMessageSize != 10_000_000 || c.Limits.SMTPDataTimeout.D() != 90*time.Second {
				t.Errorf("got %v %v", c.MaxMessageSize, c.Limits.SMTPDataTimeout)
			}
		}},
		{name: "retention in days", in: "retention = \"7d\"\n", check: func(t *testing.T, c *Config) {
			if c.Retention.D() != 7*24*time.Hour {
				t.Errorf("retention %v", c.Retention)
			}
		}},
		{name: "pop3", in: "[pop3]\ndelete = \"trash\"\nmark_seen = false\n", check: func(t *testing.T, c *Config) {
			if c.POP3.Delete != "trash" || c.POP3.MarkSeen || !c.POP3.HideDeleted {
				t.Errorf("got %+v", c.POP3)
			}
		}},
		{name: "dns servers", in: "[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n", check: func(t *testing.T, c *Config) {
			if len(c.DNS.Servers) != 2 || c.DNS.Servers[1] != "[::1]:53" {
				t.Errorf("dns.servers = %v", c.DNS.Servers)
			}
		}},
		{name: "bad dns server", in: "[dns]\nservers = [\"resolver.example\"]\n", wantErr: "dns.servers: \"resolver.example\" is not IP:port", line: 2},
		{name: "queue and relay", in: "[queue]\nport = 2525\nretry = [\"1m\", \"1h\"]\nlifetime = \"2d\"\n[relay]\nhost = \"smtp.example.net:587\"\nusername = \"u\"\npassword = \"p\"\n", check: func(t *testing.T, c *Config) {
			if c.Queue.Port != 2525 || len(c.Queue.Retry) != 2 || c.Queue.Retry[1].D() != time.Hour || c.Queue.Lifetime.D() != 48*time.Hour ||
				c.Relay.Host != "smtp.example.net:587" || c.Relay.TLS != "starttls" || c.Queue.Concurrency != 10 {
				t.Errorf("got %+v %+v", c.Queue, c.Relay)
			}
		}},
		{name: "relay tls none off loopback", in: "[relay]\nhost = \"smtp.example.net:25\"\ntls = \"none\"\n", wantErr: "relay.tls: \"none\" is allowed only for a relay on loopback", line: 3},
		{name: "relay password without tls", in: "[relay]\nhost = \"127.0.0.1:25\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n", wantErr: "relay.username: a password is never sent without TLS", line: 4},
		{name: "relay bad tls", in: "[relay]\ntls = \"ssl\"\n", wantErr: "relay.tls: \"ssl\" is not one of", line: 2},
		{name: "relay bad host", in: "[relay]\nhost = \"smtp.example.net\"\n", wantErr: "relay.host: \"smtp.example.net\" is not host:port", line: 2},
		{name: "queue empty retry", in: "[queue]\nretry = []\n", wantErr: "queue.retry: needs at least one wait", line: 2},
		{name: "queue port", in: "[queue]\nport = 0\n", wantErr: "queue.port: must be a port number", line: 2},
		{name: "store postgres", in: "[store]\nbackend = \"postgres\"\ndsn = \"postgres://postfach@127.0.0.1/postfach\"\nmax_conns = 4\n", check: func(t *testing.T, c *Config) {
			if c.Store.Backend != StorePostgres || c.Store.MaxConns != 4 {
				t.Errorf("store %+v", c.Store)
			}
		}},
		{name: "store postgres without dsn", in: "[store]\nbackend = \"postgres\"\n", wantErr: "store.backend: \"postgres\" needs store.dsn", line: 2},
		{name: "store bad backend", in: "[store]\nbackend = \"mysql\"\n", wantErr: "store.backend: \"mysql\" is not \"sqlite\" or \"postgres\"", line: 2},
		{name: "store dsn with sqlite", in: "[store]\ndsn = \"postgres://x\"\n", wantErr: "store.dsn: is for backend \"postgres\"", line: 2},
		{name: "store max_conns", in: "[store]\nbackend = \"postgres\"\ndsn = \"x=y\"\nmax_conns = 2\n", wantErr: "store.max_conns: must be 0", line: 4},
		{name: "unknown top key", in: "\n\ndata_dri = \"x\"\n", wantErr: "data_dri: unknown key", line: 3},
		{name: "unknown table key", in: "[listen]\nimap = \"127.0.0.1:1\"\nimapz = \"x\"\n", wantErr: "listen.imapz: unknown key", line: 3},
		{name: "unknown table", in: "[foo]\nbar = 1\n", wantErr: "unknown key", line: 1},
		{name: "bad size", in: "max_message_size = \"fifty\"\n", wantErr: "invalid size", line: 1},
		{name: "too small size", in: "max_message_size = \"12\"\n", wantErr: "max_message_size: must be at least 1KiB", line: 1},
		{name: "bad duration", in: "[limits]\n\nsmtp_command_timeout = \"soon\"\n", wantErr: "invalid duration", line: 3},
		{name: "wrong type", in: "domains = \"example.org\"\n", wantErr: "domains", line: 1},
		{name: "bad listen", in: "[listen]\nsmtp = \"0.0.0.0\"\n", wantErr: "listen.smtp: \"0.0.0.0\" is not host:port", line: 2},
		{name: "bad port", in: "[listen]\nsmtp = \"127.0.0.1:99999\"\n", wantErr: "bad port", line: 2},
		{name: "unix only lmtp", in: "[listen]\nsmtp = \"unix:/tmp/x\"\n", wantErr: "only supported for lmtp", line: 2},
		{name: "duplicate listen", in: "[listen]\nsmtp = \"127.0.0.1:2424\"\n", wantErr: "also used by", line: 2},
		{name: "few recipients", in: "[limits]\nrecipients = 10\n", wantErr: "at least 100", line: 2},
		{name: "long unknown recipient delay", in: "[limits]\nsmtp_unknown_recipient_delay = \"2m\"\n", wantErr: "limits.smtp_unknown_recipient_delay", line: 2},
		{name: "negative unknown recipients", in: "[limits]\nsmtp_unknown_recipients = -1\n", wantErr: "limits.smtp_unknown_recipients", line: 2},
		{name: "tls half", in: "[tls]\ncert = \"c.pem\"\n", wantErr: "both be set", line: 2},
		{name: "bad level", in: "[log]\nlevel = \"loud\"\n", wantErr: "log.level", line: 2},
		{name: "bad pop3 delete", in: "[pop3]\ndelete = \"shred\"\n", wantErr: "pop3.delete", line: 2},
		{name: "bad domain", in: "domains = [\"exa mple.org\"]\n", wantErr: "not a valid domain", line: 1},
		{name: "no domains", in: "domains = []\n", wantErr: "at least one", line: 1},
		{name: "bad postmaster", in: "postmaster = \"nobody\"\n", wantErr: "postmaster", line: 1},
		{name: "short retention", in: "\nretention = \"10m\"\n", wantErr: "retention: must be at least 1h", line: 2},
		{name: "bad days", in: "retention = \"1.5d\"\n", wantErr: "invalid duration", line: 1},
		{name: "syntax error", in: "a = = 1\n", wantErr: "test.toml:1", line: 1},
		{name: "public url path", in: "[web]\npublic_url = \"https://mail.example.org/setup\"\n", wantErr: "web.public_url", line: 2},
		{name: "public url http", in: "[web]\npublic_url = \"http://mail.example.org\"\n", wantErr: "https://", line: 2},
		{name: "public port", in: "[public]\nimaps = 70000\n", wantErr: "public.imaps", line: 2},
		{name: "acme without challenge", in: "[tls]\nacme = true\n", wantErr: "no way to answer", line: 2},
		{name: "acme with files", in: "[listen]\nweb_http = \"127.0.0.1:8081\"\n[tls]\nacme = true\ncert = \"c\"\nkey = \"k\"\n", wantErr: "must be empty when tls.acme", line: 4},
		{name: "acme challenge off", in: "[listen]\nweb = \"\"\n[tls]\nacme = true\nacme_challenges = [\"tls-alpn-01\"]\n", wantErr: "listen.web, which is off", line: 5},
		{name: "acme bad challenge", in: "[tls]\nacme_challenges = [\"dns-01\"]\n", wantErr: "tls.acme_challenges", line: 2},
		{name: "acme wildcard", in: "[tls]\nacme_domains = [\"*.example.org\"]\n", wantErr: "tls.acme_domains", line: 2},
		{name: "acme on 443", in: "[listen]\nweb = \"[::]:443\"\n[tls]\nacme = true\n", check: func(t *testing.T, c *Config) {
			if got := c.ACMEChallengeTypes(); len(got) != 1 || got[0] != ChallengeTLSALPN01 {
				t.Errorf("challenges %v", got)
			}
			if got := c.PublicURL(""); got != "https://"+c.Hostname {
				t.Errorf("public url %q", got)
			}
		}},
		{name: "public ports", in: "[listen]\nimaps = \"[::]:1993\"\npop3 = \"\"\n[public]\nhost = \"imap.example.org\"\nimaps = 993\npop3s = -1\n", check: func(t *testing.T, c *Config) {
			if c.PublicHost() != "imap.example.org" || c.PublicPort("imaps", "") != 993 || c.PublicPort("pop3s", "") != 0 ||
				c.PublicPort("pop3", "") != 0 || c.PublicPort("imap", "127.0.0.1:40143") != 40143 || c.PublicPort("imap", "") != 1143 {
				t.Errorf("public %+v", c.Public)
			}
			if got := c.PublicURL("127.0.0.1:45000"); got != "https://"+c.Hostname+":45000" {
				t.Errorf("public url %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.toml", []byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "test.toml") {
				t.Errorf("error %q does not name the file", err)
			}
			var ce *Error
			var ces Errors
			line := 0
			switch {
			case errors.As(err, &ces):
				line = ces[0].Line
			case errors.As(err, &ce):
				line = ce.Line
			}
			if line != tt.line {
				t.Errorf("error %q: line %d, want %d", err, line, tt.line)
			}
		})
	}
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "postfach.toml")
	body := "data_dir = \"data\"\n[listen]\nlmtp = \"unix:run/lmtp.sock\"\n[tls]\ncert = \"c.pem\"\nkey = \"/etc/k.pem\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "data") {
		t.Errorf("data_dir = %q", c.DataDir)
	}
	if c.Listen.LMTP != "unix:"+filepath.Join(dir, "run/lmtp.sock") {
		t.Errorf("lmtp = %q", c.Listen.LMTP)
	}
	if c.TLS.Cert != filepath.Join(dir, "c.pem") || c.TLS.Key != "/etc/k.pem" {
		t.Errorf("tls = %+v", c.TLS)
	}
	if c.Path != path {
		t.Errorf("path = %q", c.Path)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		bad  bool
	}{
		{"50MiB", 50 << 20, false}, {"50mib", 50 << 20, false}, {"10MB", 10_000_000, false},
		{"512KiB", 512 << 10, false}, {"1GiB", 1 << 30, false}, {"1048576", 1 << 20, false},
		{"7 KiB", 7 << 10, false}, {"1k", 1024, false}, {"", 0, true}, {"-1", 0, true},
		{"MiB", 0, true}, {"1.5MiB", 0, true}, {"99999999999999999GiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v", tt.in, got, err)
		}
		if !tt.bad {
			back, err := ParseSize(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %q via %q: %v %v", tt.in, got.String(), back, err)
			}
		}
	}
}

func TestAccountSettings(t *testing.T) {
	tests := []struct {
		k, v string
		ok   bool
	}{
		{"pop3.delete", "trash", true}, {"pop3.delete", "shred", false}, {"pop3.delete", "", true},
		{"pop3.mark_seen", "false", true}, {"pop3.mark_seen", "maybe", false}, {"pop3.mark_seen", "1", false},
		{"pop3.device_views", "true", true}, {"hostname", "x", false},
	}
	for _, tt := range tests {
		if err := ValidateAccountSetting(tt.k, tt.v); (err == nil) != tt.ok {
			t.Errorf("ValidateAccountSetting(%q, %q) = %v", tt.k, tt.v, err)
		}
	}
}

// TestEveryKeyDocumented fails when a config key is missing from
// docs/configuration.md (in the form `key`) or from its defaults block.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	keys := Keys()
	if len(keys) < 30 {
		t.Fatalf("Keys() returned only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(text, "`"+k+"`") {
			t.Errorf("config key %q is not documented in docs/configuration.md", k)
		}
	}
	// The defaults block must parse and equal Default() (except hostname).
	start := strings.Index(text, "```toml\n")
	end := strings.Index(text[start+8:], "```")
	block := text[start+8 : start+8+end]
	c, err := Parse("configuration.md", []byte(block))
	if err != nil {
		t.Fatalf("defaults block in docs does not parse: %v", err)
	}
	c.Hostname = Default().Hostname
	c.Path = ""
	if got, want := c.String(), Default().String(); got != want {
		t.Errorf("documented defaults differ from Default():\n%s\nwant\n%s", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("data_dir = \"x\"\n[listen]\nsmtp = \"127.0.0.1:25\"\n"))
	f.Add([]byte("max_message_size = \"50MiB\"\n[limits]\nsmtp_data_timeout = \"3m\"\n"))
	f.Add([]byte("[pop3]\ndelete = \"trash\"\n[[x]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}

// TestShippedConfigs keeps the example configs in the repository valid.
func TestShippedConfigs(t *testing.T) {
	for _, p := range []string{"../../contrib/systemd/postfach.toml"} {
		if _, err := Load(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestStringHidesSecrets: a config printed or logged shows no password
// or secret key, in any of the places a config holds one.
func TestStringHidesSecrets(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@db.example:5432/mail?sslmode=require",
		"postgres://u@db.example/mail?password=hunter2",
		"host=db.example user=u password=hunter2 dbname=mail",
		"host=db.example password='hunter2 x' dbname=mail",
	} {
		c := Default()
		c.Relay.Password = "hunter2"
		c.Blob.SecretKey = "hunter2"
		c.Store.DSN = dsn
		out := c.String()
		if strings.Contains(out, "hunter2") {
			t.Errorf("dsn %q: String shows a secret:\n%s", dsn, out)
		}
		if !strings.Contains(out, "db.example") {
			t.Errorf("dsn %q: the host is gone too:\n%s", dsn, out)
		}
	}
}
