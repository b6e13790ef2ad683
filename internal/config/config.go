// Package config is postfach's typed configuration: the TOML file format,
// the embedded defaults, and validation. Only cmd/postfach and
// internal/server read it; protocol servers take plain Options structs.
//
// Every key is documented in docs/configuration.md; a test fails when a key
// is missing there.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. The zero value is not useful; start
// from Default or Load.
type Config struct {
	// Path is the file the config was loaded from; "" for the defaults.
	Path string `toml:"-"`

	// DataDir holds the store, the TLS key pair and the admin socket. Load
	// makes it absolute: a relative value is relative to the config file's
	// folder, or to the working directory when there is no config file.
	DataDir string `toml:"data_dir"`
	// Hostname is the server's name in greetings, Received: headers and the
	// self-signed certificate.
	Hostname string `toml:"hostname"`
	// Domains are the local domains: mail for them is delivered here.
	Domains []string `toml:"domains"`
	// MaxMessageSize is the largest message accepted by SMTP, LMTP and
	// `postfach deliver`.
	MaxMessageSize Size `toml:"max_message_size"`
	// Postmaster names the account that receives mail for postmaster@ every
	// local domain (RFC 5321 §4.5.1); "" means the first account created.
	Postmaster string `toml:"postmaster"`
	// Retention is how long expunged and deleted mail stays recoverable,
	// and how long QRESYNC can tell exactly what vanished.
	Retention Duration `toml:"retention"`

	Listen     Listen     `toml:"listen"`
	TLS        TLS        `toml:"tls"`
	Auth       Auth       `toml:"auth"`
	Limits     Limits     `toml:"limits"`
	Log        Log        `toml:"log"`
	POP3       POP3       `toml:"pop3"`
	Debug      Debug      `toml:"debug"`
	IMAP       IMAP       `toml:"imap"`
	Scrub      Scrub      `toml:"scrub"`
	Web        Web        `toml:"web"`
	Public     Public     `toml:"public"`
	Backup     Backup     `toml:"backup"`
	DNS        DNS        `toml:"dns"`
	Queue      Queue      `toml:"queue"`
	Relay      Relay      `toml:"relay"`
	Submission Submission `toml:"submission"`
	// Inbound configures the sender authentication checks of the MX.
	Inbound Inbound `toml:"inbound"`
	// Store chooses the metadata store (issue 18).
	Store Store `toml:"store"`
	// Blob says where message bodies are kept (config/blob.go).
	Blob Blob `toml:"blob"`
}

// Store chooses where the metadata lives: the embedded SQLite database in
// data_dir (the default) or a PostgreSQL database (issue 18).
type Store struct {
	// Backend is StoreSQLite or StorePostgres.
	Backend string `toml:"backend"`
	// DSN is the PostgreSQL connection string (backend "postgres").
	DSN string `toml:"dsn"`
	// MaxConns bounds the connections to PostgreSQL, the writer's
	// included; 0 means the store's default.
	MaxConns int `toml:"max_conns"`
}

// Store backends.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Inbound configures the checks of mail received on listen.smtp (issue
// 16, internal/msgauth): SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC
// 7489). LMTP is not checked: the MTA in front of it does that.
type Inbound struct {
	SPF   bool `toml:"spf"`
	DKIM  bool `toml:"dkim"`
	DMARC bool `toml:"dmarc"`
	// DMARCReject refuses at DATA (550 5.7.1) a message that fails DMARC
	// under p=reject; false delivers it to Junk instead.
	DMARCReject bool `toml:"dmarc_reject"`
}

// Backup configures the backups the server takes itself (docs/backup.md).
type Backup struct {
	// Dir is the backup root the server writes into; "" turns scheduled
	// backups off. Load makes it absolute like data_dir.
	Dir string `toml:"dir"`
	// Interval is the time between the start of one backup and the next.
	Interval Duration `toml:"interval"`
	// Keep is how many backups stay in Dir; older ones are pruned after
	// each backup.
	Keep int `toml:"keep"`
}

// Queue configures the outbound queue (docs/sending.md).
type Queue struct {
	// Port is the TCP port of remote MX hosts (MX records carry none):
	// 25, or another for tests and labs.
	Port int `toml:"port"`
	// Retry is the wait after each failed attempt; the last value repeats.
	Retry []Duration `toml:"retry"`
	// Lifetime is how long a message is retried before it is bounced.
	Lifetime Duration `toml:"lifetime"`
	// DelayNotice is the age at which the sender is told a message is
	// still undelivered; 0 means never.
	DelayNotice Duration `toml:"delay_notice"`
	// Concurrency bounds the simultaneous outgoing connections.
	Concurrency int `toml:"concurrency"`
	// CAFile is a PEM file of CA certificates trusted besides the
	// system's, for MTA-STS and the relay.
	CAFile string `toml:"ca_file"`
}

// Relay configures a smarthost: when Host is set, all outgoing mail goes
// there instead of to the recipients' MX hosts.
type Relay struct {
	// Host is "host:port".
	Host string `toml:"host"`
	// Username and Password authenticate (AUTH PLAIN or LOGIN, over TLS
	// only); both empty means no authentication.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// TLS is "starttls", "implicit" or "none" (loopback only).
	TLS string `toml:"tls"`
}

// DNS configures the resolver of the outbound queue and of message
// authentication (internal/dnsr).
type DNS struct {
	// Servers are the resolvers asked, "IP:port", in order; empty means
	// the nameservers of /etc/resolv.conf. DANE trusts their AD bit, so
	// they should be a validating resolver on this machine.
	Servers []string `toml:"servers"`
}

// Submission configures message submission (listen.submission and
// listen.submissions, RFC 6409).
type Submission struct {
	// SaveSent stores each submitted message in the sender's \Sent
	// mailbox.
	SaveSent bool `toml:"save_sent"`
	// MaxMessagesPerHour and MaxRecipientsPerHour limit what one account
	// submits in any hour; 0 means no limit.
	MaxMessagesPerHour   int `toml:"max_messages_per_hour"`
	MaxRecipientsPerHour int `toml:"max_recipients_per_hour"`
}

// Web configures the HTTPS listener for new devices (listen.web).
type Web struct {
	// PublicURL is the https:// address under which clients reach
	// listen.web, for the links postfach gives out; "" means
	// https://Hostname, with listen.web's port unless it is 443.
	PublicURL string `toml:"public_url"`
}

// Public says how clients reach the mail listeners, for what autoconfig
// and autodiscover tell them: the host name, and per listener the port
// (0: listen's own port; -1: not told). It differs from listen when a
// NAT or proxy forwards other ports.
type Public struct {
	Host        string `toml:"host"`
	IMAP        int    `toml:"imap"`
	IMAPS       int    `toml:"imaps"`
	POP3        int    `toml:"pop3"`
	POP3S       int    `toml:"pop3s"`
	Submission  int    `toml:"submission"`
	Submissions int    `toml:"submissions"`
}

// Scrub configures the background check of stored bodies against their
// SHA-256.
type Scrub struct {
	// Rate is how many bytes of bodies per second the scrub reads; 0
	// turns it off.
	Rate Size `toml:"rate"`
	// Interval is the pause between the end of one pass and the start of
	// the next.
	Interval Duration `toml:"interval"`
}

// Debug holds switches for diagnosing the server.
type Debug struct {
	// Pprof serves Go's profiler under /debug/pprof/ on the http listener.
	Pprof bool `toml:"pprof"`
}

// Listen holds the listener addresses; "" switches a listener off.
type Listen struct {
	IMAP        string `toml:"imap"`
	IMAPS       string `toml:"imaps"`
	POP3        string `toml:"pop3"`
	POP3S       string `toml:"pop3s"`
	LMTP        string `toml:"lmtp"` // also "unix:PATH"
	SMTP        string `toml:"smtp"`
	Submission  string `toml:"submission"`
	Submissions string `toml:"submissions"`
	HTTP        string `toml:"http"`
	// Web is HTTPS for new devices (autoconfig, autodiscover) and the
	// TLS-ALPN-01 challenge of ACME.
	Web string `toml:"web"`
	// WebHTTP is plain HTTP: the HTTP-01 challenge of ACME, and a
	// redirect to Web.PublicURL for everything else.
	WebHTTP string `toml:"web_http"`
}

// TLS names the certificate files; both empty means a self-signed
// certificate for Hostname, generated once into DataDir, unless ACME is
// on.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// ACME gets and renews the certificate from an ACME CA (RFC 8555),
	// kept in DataDir/acme.
	ACME bool `toml:"acme"`
	// ACMEDirectory is the CA's directory URL.
	ACMEDirectory string `toml:"acme_directory"`
	// ACMEEmail is the contact address given to the CA; may be "".
	ACMEEmail string `toml:"acme_email"`
	// ACMEDomains are the names on the certificate; empty means Hostname.
	ACMEDomains []string `toml:"acme_domains"`
	// ACMEChallenges are the challenge types offered ("tls-alpn-01",
	// "http-01"); empty means those the listeners allow (ACMEChallengeTypes).
	ACMEChallenges []string `toml:"acme_challenges"`
	// ACMECA is a PEM file of CA certificates to trust, besides the
	// system's, for the connection to the ACME directory.
	ACMECA string `toml:"acme_ca"`
}

// LetsEncrypt is the default tls.acme_directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// ACME challenge types (RFC 8737 §3, RFC 8555 §8.3).
const (
	ChallengeTLSALPN01 = "tls-alpn-01"
	ChallengeHTTP01    = "http-01"
)

// Auth holds authentication policy.
type Auth struct {
	// AllowInsecure allows password logins on non-TLS connections from
	// non-loopback addresses.
	AllowInsecure bool `toml:"allow_insecure"`
	// RequireDevicePasswords refuses the account password for IMAP, POP3
	// and submission: only device passwords sign in (docs/devices.md).
	// Accounts override it with `postfach user set`.
	RequireDevicePasswords bool `toml:"require_device_passwords"`

	// The guessing protection (docs/security.md). A client is an IPv4
	// address or an IPv6 /64. From IPDelayAfter failures of a client
	// within FailureWindow on, its attempts wait, up to IPMaxDelay; at
	// IPBlockAfter failures it is refused for IPBlockDuration. From
	// AccountDelayAfter failures for an account, attempts on it wait up to
	// AccountMaxDelay; an account is never refused. A count of 0
	// switches that part off.
	IPDelayAfter      int      `toml:"ip_delay_after"`
	IPMaxDelay        Duration `toml:"ip_max_delay"`
	IPBlockAfter      int      `toml:"ip_block_after"`
	IPBlockDuration   Duration `toml:"ip_block_duration"`
	FailureWindow     Duration `toml:"failure_window"`
	AccountDelayAfter int      `toml:"account_delay_after"`
	AccountMaxDelay   Duration `toml:"account_max_delay"`
}

// Limits bounds what clients may use.
type Limits struct {
	// Connections is the maximum number of open connections per listener.
	Connections int `toml:"connections"`
	// ConnectionsPerIP is the maximum per client IP per listener.
	ConnectionsPerIP int `toml:"connections_per_ip"`
	// Recipients is the maximum number of recipients of one message
	// (RFC 5321 §4.5.3.1.8: at least 100).
	Recipients int `toml:"recipients"`
	// SMTPCommandTimeout is how long SMTP/LMTP wait for the next command
	// (RFC 5321 §4.5.3.2.7: at least 5 minutes).
	SMTPCommandTimeout Duration `toml:"smtp_command_timeout"`
	// SMTPDataTimeout is how long SMTP/LMTP wait for each block of message
	// data (RFC 5321 §4.5.3.2.5: at least 3 minutes).
	SMTPDataTimeout Duration `toml:"smtp_data_timeout"`
	// SMTPUnknownRecipients: the SMTP (MX) session that names one more
	// unknown user is closed with 421 4.7.0; 0 means no limit.
	SMTPUnknownRecipients int `toml:"smtp_unknown_recipients"`
	// SMTPUnknownRecipientsBeforeDelay unknown users per SMTP session are
	// answered at once, each further one after SMTPUnknownRecipientDelay.
	SMTPUnknownRecipientsBeforeDelay int `toml:"smtp_unknown_recipients_before_delay"`
	// SMTPUnknownRecipientDelay; 0 means no delay.
	SMTPUnknownRecipientDelay Duration `toml:"smtp_unknown_recipient_delay"`
	// IMAPIdleTimeout ends idle IMAP sessions (RFC 9051 §5.4: at least 30
	// minutes).
	IMAPIdleTimeout Duration `toml:"imap_idle_timeout"`
	// POP3IdleTimeout ends idle POP3 sessions (RFC 1939 §3: at least 10
	// minutes).
	POP3IdleTimeout Duration `toml:"pop3_idle_timeout"`
	// LoginTimeout is how long an IMAP or POP3 session may take to log
	// in, from connect, in total.
	LoginTimeout Duration `toml:"login_timeout"`
	// PreAuthMemoryPerIP bounds what the connections of one client that
	// have not logged in hold for their commands, together.
	PreAuthMemoryPerIP Size `toml:"preauth_memory_per_ip"`
	// Mailboxes is the most mailboxes (and subscriptions) one account may
	// have; 0 means no limit.
	Mailboxes int `toml:"mailboxes"`
	// DiskReserve is the size of the file kept in DataDir and released
	// when the disk fills, so that deleting mail always works; 0 means
	// none.
	DiskReserve Size `toml:"disk_reserve"`
	// ShutdownGrace is how long a stop (SIGTERM, SIGINT) lets deliveries
	// and commands in progress finish; then the remaining connections are
	// closed and the process exits, whatever the store is doing.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// Quota is the default limit on the sum of the sizes of an account's
	// messages (RFC 9208 STORAGE); `postfach user quota` gives an
	// account its own. 0 means no limit.
	Quota Size `toml:"quota"`
	// QuotaMessages is the default limit on the number of an account's
	// messages (RFC 9208 MESSAGE); 0 means no limit.
	QuotaMessages int64 `toml:"quota_messages"`
	// JunkCommands: an SMTP or LMTP session, or a POP3 session after
	// login, that sends one more command making no progress (NOOP, RSET,
	// ...) without a message in between is closed; 0 means no limit.
	JunkCommands int `toml:"junk_commands"`
	// ProgressTimeout: an SMTP or LMTP session that has not sent a
	// message, or a POP3 session after login that has not retrieved or
	// deleted one, within this long of connecting (or of the last one) is
	// closed; 0 means no limit.
	ProgressTimeout Duration `toml:"progress_timeout"`
}

// IMAP configures IMAP behaviour.
type IMAP struct {
	// AutoSubscribe subscribes the mailboxes a client creates.
	AutoSubscribe bool `toml:"auto_subscribe"`
	// CacheMessages bounds the messages the mailbox caches hold (0: no
	// mailbox caches); CacheSize the parse results and search text kept
	// by message body (0: none).
	CacheMessages int  `toml:"cache_messages"`
	CacheSize     Size `toml:"cache_size"`
}

// Log configures the server log.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
}

// POP3 configures how POP3 and IMAP share mailboxes (issue 5).
type POP3 struct {
	MarkSeen    bool   `toml:"mark_seen"`
	HideDeleted bool   `toml:"hide_deleted"`
	Delete      string `toml:"delete"` // expunge, trash or hide
	DeviceViews bool   `toml:"device_views"`
}

// minMailboxes is the smallest limits.mailboxes: the six mailboxes every
// account starts with, and room for a few of the user's own.
const minMailboxes = 10

// POP3DeleteModes are the values of pop3.delete.
var POP3DeleteModes = []string{"expunge", "trash", "hide"}

// Default returns the embedded defaults. Hostname is the machine's host
// name (or "localhost" when it has none); DataDir is still relative.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		DataDir:        "postfach-data",
		Hostname:       host,
		Domains:        []string{"localhost"},
		MaxMessageSize: 50 << 20,
		Retention:      Duration(30 * 24 * time.Hour),
		Listen: Listen{
			IMAP:        "127.0.0.1:1143",
			IMAPS:       "127.0.0.1:1993",
			POP3:        "127.0.0.1:1110",
			POP3S:       "127.0.0.1:1995",
			LMTP:        "127.0.0.1:2424",
			SMTP:        "127.0.0.1:2525",
			Submission:  "127.0.0.1:1587",
			Submissions: "127.0.0.1:1465",
			HTTP:        "127.0.0.1:8080",
			Web:         "127.0.0.1:8443",
		},
		TLS: TLS{ACMEDirectory: LetsEncrypt, ACMEDomains: []string{}, ACMEChallenges: []string{}},
		Limits: Limits{
			Connections:        1000,
			ConnectionsPerIP:   50,
			Recipients:         1000,
			SMTPCommandTimeout: Duration(5 * 60e9),
			SMTPDataTimeout:    Duration(3 * 60e9),
			IMAPIdleTimeout:    Duration(30 * 60e9),
			POP3IdleTimeout:    Duration(10 * 60e9),
			LoginTimeout:       Duration(60e9),
			PreAuthMemoryPerIP: 256 << 10,
			Mailboxes:          5000,
			DiskReserve:        64 << 20,
			ShutdownGrace:      Duration(30e9),

			SMTPUnknownRecipients:            20,
			SMTPUnknownRecipientsBeforeDelay: 5,
			SMTPUnknownRecipientDelay:        Duration(time.Second),

			JunkCommands:    100,
			ProgressTimeout: Duration(30 * time.Minute),
		},
		Auth: Auth{
			IPDelayAfter:      5,
			IPMaxDelay:        Duration(15e9),
			IPBlockAfter:      20,
			IPBlockDuration:   Duration(15 * 60e9),
			FailureWindow:     Duration(10 * 60e9),
			AccountDelayAfter: 5,
			AccountMaxDelay:   Duration(3e9),
		},
		IMAP:  IMAP{AutoSubscribe: true, CacheMessages: 500_000, CacheSize: 128 << 20},
		Scrub: Scrub{Rate: 2 << 20, Interval: Duration(24 * time.Hour)},
		Store: Store{Backend: StoreSQLite},
		Log:   Log{Level: "info", Format: "text"},
		POP3:  POP3{MarkSeen: true, HideDeleted: true, Delete: "hide", DeviceViews: true},

		Backup: Backup{Interval: Duration(24 * time.Hour), Keep: 7},
		DNS:    DNS{Servers: []string{}},
		Queue: Queue{Port: 25, Lifetime: Duration(5 * 24 * time.Hour), DelayNotice: Duration(4 * time.Hour), Concurrency: 10,
			Retry: []Duration{Duration(5 * time.Minute), Duration(10 * time.Minute), Duration(20 * time.Minute),
				Duration(40 * time.Minute), Duration(time.Hour), Duration(2 * time.Hour), Duration(4 * time.Hour)}},
		Relay:      Relay{TLS: "starttls"},
		Submission: Submission{SaveSent: true, MaxMessagesPerHour: 500, MaxRecipientsPerHour: 2000},
		Inbound:    Inbound{SPF: true, DKIM: true, DMARC: true, DMARCReject: true},
		Blob:       Blob{Backend: "file"},
	}
}

// Error is a config error: the file, the line (0 when unknown), the key and
// a reason.
type Error struct {
	File   string
	Line   int
	Key    string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.File == "" {
		b.WriteString("config")
	}
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is a list of config errors; Load and Validate return every problem
// found, not just the first.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and validates the config file at path. A relative data_dir
// (and a relative unix:PATH for lmtp, and relative TLS files) is resolved
// against the file's folder.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	c, err := Parse(abs, data)
	if err != nil {
		return nil, err
	}
	c.Resolve(filepath.Dir(abs))
	return c, nil
}

// Parse decodes TOML data over the defaults and validates the result; name
// is used in error messages. Paths are left as written (see Resolve).
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	c.Path = name
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Reason: pe.Message}
		}
		return nil, decodeError(name, err)
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		key := k.String()
		errs = append(errs, &Error{File: name, Line: keyLine(data, key), Key: key, Reason: "unknown key"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := c.Validate(); err != nil {
		var verrs Errors
		if errors.As(err, &verrs) {
			for _, e := range verrs {
				e.File = name
				e.Line = keyLine(data, e.Key)
			}
		}
		return nil, err
	}
	return c, nil
}

// decodeErrRE matches the type errors of the TOML decoder, which carry the
// position in their text only.
var decodeErrRE = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

func decodeError(name string, err error) *Error {
	msg := err.Error()
	if m := decodeErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Key: m[2], Reason: m[3]}
	}
	return &Error{File: name, Reason: strings.TrimPrefix(msg, "toml: ")}
}

// Resolve makes relative paths absolute against dir (the config file's
// folder, or the working directory when there is no file).
func (c *Config) Resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.DataDir = abs(c.DataDir)
	c.TLS.Cert = abs(c.TLS.Cert)
	c.TLS.Key = abs(c.TLS.Key)
	c.TLS.ACMECA = abs(c.TLS.ACMECA)
	c.Backup.Dir = abs(c.Backup.Dir)
	c.Queue.CAFile = abs(c.Queue.CAFile)
	if p, ok := strings.CutPrefix(c.Listen.LMTP, "unix:"); ok {
		c.Listen.LMTP = "unix:" + abs(p)
	}
}

// Validate checks every value and returns Errors listing each bad key.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: c.Path, Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if !validHostname(c.Hostname) {
		bad("hostname", "%q is not a valid host name", c.Hostname)
	}
	if len(c.Domains) == 0 {
		bad("domains", "at least one local domain is needed")
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		if !validHostname(d) {
			bad("domains", "%q is not a valid domain", d)
		}
		if seen[strings.ToLower(d)] {
			bad("domains", "%q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if c.MaxMessageSize < 1024 {
		bad("max_message_size", "must be at least 1KiB")
	}
	if c.Retention.D() < time.Hour {
		bad("retention", "must be at least 1h")
	}
	if c.IMAP.CacheMessages < 0 {
		bad("imap.cache_messages", "must not be negative")
	}
	if c.IMAP.CacheSize < 0 {
		bad("imap.cache_size", "must not be negative")
	}
	if c.Submission.MaxMessagesPerHour < 0 {
		bad("submission.max_messages_per_hour", "must not be negative (0 means no limit)")
	}
	if c.Submission.MaxRecipientsPerHour < 0 {
		bad("submission.max_recipients_per_hour", "must not be negative (0 means no limit)")
	}
	if c.Postmaster != "" && !validAddress(c.Postmaster) {
		bad("postmaster", "%q is not an address (want an account name such as \"admin@example.org\")", c.Postmaster)
	}
	addrs := map[string]string{}
	for _, l := range c.Listen.All() {
		if l.Addr == "" {
			continue
		}
		key := "listen." + l.Name
		if p, ok := strings.CutPrefix(l.Addr, "unix:"); ok {
			if l.Name != "lmtp" {
				bad(key, "unix sockets are only supported for lmtp")
			} else if p == "" {
				bad(key, "unix: needs a path")
			}
		} else if err := validListenAddr(l.Addr); err != nil {
			bad(key, "%v", err)
		}
		if other, dup := addrs[l.Addr]; dup && !strings.HasSuffix(l.Addr, ":0") {
			bad(key, "address %q is also used by listen.%s", l.Addr, other)
		}
		addrs[l.Addr] = l.Name
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert", "tls.cert and tls.key must both be set or both be empty")
	}
	c.validateWeb(bad)
	c.validateBlob(bad)
	lim := c.Limits
	if lim.Connections < 1 {
		bad("limits.connections", "must be at least 1")
	}
	if lim.ConnectionsPerIP < 1 {
		bad("limits.connections_per_ip", "must be at least 1")
	}
	if lim.Recipients < 100 {
		// RFC 5321 §4.5.3.1.8: servers MUST accept at least 100 recipients.
		bad("limits.recipients", "must be at least 100 (RFC 5321 section 4.5.3.1.8)")
	}
	if lim.SMTPUnknownRecipients < 0 {
		bad("limits.smtp_unknown_recipients", "must not be negative (0: no limit)")
	}
	if lim.SMTPUnknownRecipientsBeforeDelay < 0 {
		bad("limits.smtp_unknown_recipients_before_delay", "must not be negative")
	}
	if d := lim.SMTPUnknownRecipientDelay.D(); d < 0 || d > time.Minute {
		// The client waits up to 5 minutes for a RCPT reply (RFC 5321
		// §4.5.3.2.3); more than a minute only holds a slot.
		bad("limits.smtp_unknown_recipient_delay", "must be between 0s and 1m")
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"limits.smtp_command_timeout", lim.SMTPCommandTimeout},
		{"limits.smtp_data_timeout", lim.SMTPDataTimeout},
		{"limits.imap_idle_timeout", lim.IMAPIdleTimeout},
		{"limits.pop3_idle_timeout", lim.POP3IdleTimeout},
		{"limits.login_timeout", lim.LoginTimeout},
	} {
		if d.v.D() < 1e9 {
			bad(d.key, "must be at least 1s")
		}
	}
	if lim.PreAuthMemoryPerIP < 16<<10 {
		// One LOGIN with two literals of the largest size.
		bad("limits.preauth_memory_per_ip", "must be at least 16KiB")
	}
	c.validateAuth(bad)
	if lim.Mailboxes != 0 && lim.Mailboxes < minMailboxes {
		bad("limits.mailboxes", "must be 0 (no limit) or at least %d (every account starts with 6)", minMailboxes)
	}
	if lim.DiskReserve < 0 {
		bad("limits.disk_reserve", "must not be negative (0 turns the reserve off)")
	}
	if c.Scrub.Rate < 0 {
		bad("scrub.rate", "must not be negative (0 turns the scrub off)")
	}
	if c.Backup.Interval.D() < time.Minute {
		bad("backup.interval", "must be at least 1m")
	}
	if c.Backup.Keep < 1 {
		bad("backup.keep", "must be at least 1")
	}
	if c.Scrub.Interval.D() < time.Second {
		bad("scrub.interval", "must be at least 1s")
	}
	switch c.Store.Backend {
	case StoreSQLite:
		if c.Store.DSN != "" {
			bad("store.dsn", "is for backend %q; the %q store lives in data_dir", StorePostgres, StoreSQLite)
		}
	case StorePostgres:
		if strings.TrimSpace(c.Store.DSN) == "" {
			bad("store.backend", "%q needs store.dsn, the database's connection string (example: \"postgres://postfach@db.example.org/postfach\")", StorePostgres)
		}
	default:
		bad("store.backend", "%q is not %q or %q", c.Store.Backend, StoreSQLite, StorePostgres)
	}
	if c.Store.MaxConns != 0 && c.Store.MaxConns < 3 {
		bad("store.max_conns", "must be 0 (the default, 10) or at least 3 (the writer, a backup's snapshot and a reader)")
	}
	if lim.ShutdownGrace < 0 {
		bad("limits.shutdown_grace", "must not be negative")
	}
	if lim.Quota < 0 {
		bad("limits.quota", "must not be negative (0: no limit)")
	}
	if lim.QuotaMessages < 0 {
		bad("limits.quota_messages", "must not be negative (0: no limit)")
	}
	if lim.JunkCommands < 0 {
		bad("limits.junk_commands", "must not be negative (0: no limit)")
	}
	if d := lim.ProgressTimeout.D(); d != 0 && d < lim.SMTPCommandTimeout.D() {
		// A shorter one would cut off a client that waits as long
		// as RFC 5321 §4.5.3.2 allows it to wait.
		bad("limits.progress_timeout", "must be 0 (no limit) or at least limits.smtp_command_timeout")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.Log.Level)) {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, strings.ToLower(c.Log.Format)) {
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if !slices.Contains(POP3DeleteModes, c.POP3.Delete) {
		bad("pop3.delete", "%q is not one of %s", c.POP3.Delete, strings.Join(POP3DeleteModes, ", "))
	}
	for _, srv := range c.DNS.Servers {
		if host, port, err := net.SplitHostPort(srv); err != nil || net.ParseIP(host) == nil || port == "" || port == "0" {
			bad("dns.servers", "%q is not IP:port (example: \"127.0.0.1:53\" or \"[::1]:53\")", srv)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad("dns.servers", "%q: bad port %q", srv, port)
		}
	}
	c.validateQueue(bad)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// validateQueue checks [queue] and [relay].
func (c *Config) validateQueue(bad func(key, format string, args ...any)) {
	q := c.Queue
	if q.Port < 1 || q.Port > 65535 {
		bad("queue.port", "must be a port number (1-65535)")
	}
	if len(q.Retry) == 0 {
		bad("queue.retry", "needs at least one wait (example: [\"5m\", \"1h\"])")
	}
	for _, d := range q.Retry {
		if d.D() < time.Second {
			bad("queue.retry", "every wait must be at least 1s")
			break
		}
	}
	if q.Lifetime.D() < time.Minute {
		bad("queue.lifetime", "must be at least 1m")
	}
	if q.DelayNotice < 0 {
		bad("queue.delay_notice", "must not be negative (0: no delay notices)")
	}
	if q.Concurrency < 1 {
		bad("queue.concurrency", "must be at least 1")
	}
	r := c.Relay
	if !slices.Contains([]string{"starttls", "implicit", "none"}, r.TLS) {
		bad("relay.tls", "%q is not one of starttls, implicit, none", r.TLS)
	}
	if r.Host == "" {
		if r.Username != "" || r.Password != "" {
			bad("relay.username", "is set but relay.host is not")
		}
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		bad("relay.host", "%q is not host:port (example: \"smtp.example.net:587\")", r.Host)
		return
	}
	if (r.Username == "") != (r.Password == "") {
		bad("relay.password", "relay.username and relay.password must both be set or both be empty")
	}
	if r.TLS == "none" {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// DESIGN.md §6: no plain text off loopback.
			bad("relay.tls", "\"none\" is allowed only for a relay on loopback (127.0.0.1, ::1, localhost)")
		}
		if r.Username != "" {
			bad("relay.username", "a password is never sent without TLS: set relay.tls to starttls or implicit")
		}
	}
}

// validateAuth checks the guessing protection keys.
func (c *Config) validateAuth(bad func(key, format string, args ...any)) {
	a := c.Auth
	for _, n := range []struct {
		key string
		v   int
	}{
		{"auth.ip_delay_after", a.IPDelayAfter},
		{"auth.ip_block_after", a.IPBlockAfter},
		{"auth.account_delay_after", a.AccountDelayAfter},
	} {
		if n.v < 0 {
			bad(n.key, "must not be negative (0 switches it off)")
		}
	}
	for _, d := range []struct {
		key      string
		v        Duration
		min, max time.Duration
	}{
		{"auth.ip_max_delay", a.IPMaxDelay, time.Millisecond, 5 * time.Minute},
		{"auth.account_max_delay", a.AccountMaxDelay, time.Millisecond, time.Minute},
		{"auth.ip_block_duration", a.IPBlockDuration, time.Second, 7 * 24 * time.Hour},
		{"auth.failure_window", a.FailureWindow, time.Second, 7 * 24 * time.Hour},
	} {
		if d.v.D() < d.min || d.v.D() > d.max {
			bad(d.key, "must be between %v and %v", d.min, d.max)
		}
	}
}

// NamedListener is one entry of Listen.All.
type NamedListener struct {
	Name string // the key under [listen]
	Addr string
}

// All returns every listener in a fixed order.
func (l Listen) All() []NamedListener {
	return []NamedListener{
		{"imap", l.IMAP}, {"imaps", l.IMAPS}, {"pop3", l.POP3}, {"pop3s", l.POP3S},
		{"lmtp", l.LMTP}, {"smtp", l.SMTP}, {"submission", l.Submission},
		{"submissions", l.Submissions}, {"http", l.HTTP}, {"web", l.Web}, {"web_http", l.WebHTTP},
	}
}

// IsLocalDomain reports whether mail for domain is delivered here.
func (c *Config) IsLocalDomain(domain string) bool {
	return slices.ContainsFunc(c.Domains, func(d string) bool { return strings.EqualFold(d, domain) })
}

func validListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (example: \"127.0.0.1:2525\" or \"[::]:25\")", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("%q: bad host %q", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port %q", addr, port)
	}
	return nil
}

// validHostname accepts LDH host names with dots (RFC 1123 §2.1).
func validHostname(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func validAddress(s string) bool {
	i := strings.LastIndexByte(s, '@')
	return i > 0 && validHostname(s[i+1:]) && !strings.ContainsAny(s[:i], " \t\r\n<>")
}

// String returns the config as TOML, the way a config file would write
// it, with its secrets (relay.password, blob.secret_key, a password in
// store.dsn) replaced by "(secret)", so that printing or logging a config
// never shows them.
func (c *Config) String() string {
	r := *c
	if r.Relay.Password != "" {
		r.Relay.Password = redacted
	}
	if r.Blob.SecretKey != "" {
		r.Blob.SecretKey = redacted
	}
	r.Store.DSN = redactDSN(r.Store.DSN)
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(&r); err != nil {
		return "# " + err.Error()
	}
	return b.String()
}

// redacted stands for a secret in String.
const redacted = "(secret)"

// dsnPassword matches the password of a key=value connection string.
var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN hides the password of a PostgreSQL connection string, in URL
// or key=value form.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", redacted)
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}"+redacted)
}
