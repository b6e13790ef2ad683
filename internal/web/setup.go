package web

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/store"
)

// The setup pages (docs/devices.md): `postfach device add` prints a link
// https://HOST/setup/TOKEN and its QR code.
//
//   - GET (and HEAD) /setup/TOKEN shows a page saying what to do on each
//     kind of device, with two buttons. It does not use the link: a link
//     preview, a mail scanner or a second look at the page leaves it
//     working.
//   - POST /setup/TOKEN (the buttons) uses the link, once: what=profile
//     answers with the Apple configuration profile (profile.go), what=settings
//     with a page of the settings and the password to type in (Android,
//     other clients). Either way the link is spent: the store marks it used
//     and drops the sealed password in the same transaction.
//
// A link that was used or has expired gets 410 Gone with a page that says
// so; an unknown one 404. Every request first passes the guessing
// protection (auth's guard, per client address, shared with the mail
// logins): an unknown or malformed token counts as a failed login, so a
// client that guesses is slowed and then blocked; a valid link counts as a
// success.
//
// Nothing here is served over plain HTTP: Redirect refuses /setup/, and
// the request log never shows a token.

// SetupPrefix is the path under which the setup links live.
const SetupPrefix = "/setup/"

// SetupStore is what the setup pages need of the store.
type SetupStore interface {
	SetupLink(ctx context.Context, id []byte) (*store.SetupLink, error)
	UseSetupLink(ctx context.Context, id []byte, now time.Time) (*store.SetupLink, error)
	AccountByID(ctx context.Context, id store.AccountID) (*store.Account, error)
}

// Guard is the guessing protection (auth.Service).
type Guard interface {
	Begin(ctx context.Context, remote netip.Addr, account, service string) (*auth.Attempt, error)
}

// SetupOptions configures NewSetup.
type SetupOptions struct {
	Links SetupStore
	// Guard, when set, limits guessing (auth.Service).
	Guard Guard
	// Mail says where the device finds the mail listeners.
	Mail MailServers
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// maxGuardWait bounds how long a request waits in the guessing protection,
// well inside the server's WriteTimeout.
const maxGuardWait = 20 * time.Second

type setupHandler struct {
	opt SetupOptions
	log *slog.Logger
	now func() time.Time
}

// NewSetup returns the handler of the setup links, for
// Server.Handle(SetupPrefix, ...).
func NewSetup(opt SetupOptions) http.Handler {
	h := &setupHandler{opt: opt, log: opt.Logger, now: opt.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// remoteAddr is the client's address, or the zero Addr when unknown (the
// guard then does not count it).
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (h *setupHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// The URL is the secret: never cached, never sent on as a Referer,
	// never indexed; the page loads nothing from elsewhere.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Robots-Tag", "noindex, nofollow")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	use := false
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		use = true
	default:
		hdr.Set("Allow", "GET, HEAD, POST")
		h.page(w, http.StatusMethodNotAllowed, pageData{Title: "Not allowed", Message: "This address takes GET and POST only."})
		return
	}
	tok := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, SetupPrefix), "/")

	remote := remoteAddr(r)
	var att *auth.Attempt
	if h.opt.Guard != nil {
		ctx, cancel := context.WithTimeout(r.Context(), maxGuardWait)
		a, err := h.opt.Guard.Begin(ctx, remote, "", "web")
		cancel()
		switch {
		case errors.Is(err, auth.ErrRateLimited):
			hdr.Set("Retry-After", "900")
			h.page(w, http.StatusTooManyRequests, pageData{Title: "Too many attempts",
				Message: "Too many wrong setup links came from your address. Wait a quarter of an hour and open the link again."})
			return
		case err != nil:
			h.unavailable(w)
			return
		}
		att = a
	}
	// outcome reports the attempt's outcome to the guard, once.
	outcome := func(f func(*auth.Attempt)) {
		if att != nil {
			f(att)
			att = nil
		}
	}
	defer outcome((*auth.Attempt).Abandon)

	raw, ok := auth.ParseSetupToken(tok)
	if !ok {
		outcome(func(a *auth.Attempt) { a.Fail("malformed setup link") })
		h.notFound(w)
		return
	}
	id := auth.SetupLinkID(raw)
	l, err := h.opt.Links.SetupLink(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		outcome(func(a *auth.Attempt) { a.Fail("unknown setup link") })
		h.notFound(w)
		return
	}
	if err != nil {
		h.log.Error("setup link lookup failed", "err", err)
		h.unavailable(w)
		return
	}
	now := h.now()
	if h.gone(w, l, now) {
		return // a real link, spent: neither a guess nor a success
	}
	outcome((*auth.Attempt).Succeed)
	acct, err := h.opt.Links.AccountByID(r.Context(), l.Account)
	if err != nil {
		h.log.Error("setup link: account lookup failed", "err", err)
		h.unavailable(w)
		return
	}
	d := pageData{Address: acct.Name, Device: l.Device, Host: h.opt.Mail.Host,
		Expires: l.Expires.UTC().Format("2006-01-02 15:04 MST"), Profile: h.opt.Mail.canProfile(), Mail: h.opt.Mail}
	if !use {
		d.Title = "Set up mail on " + l.Device
		h.page(w, http.StatusOK, d)
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	what := r.PostFormValue("what")
	if what != "settings" && what != "profile" {
		h.page(w, http.StatusBadRequest, pageData{Title: "Bad request", Message: "Use one of the buttons on the setup page."})
		return
	}
	if what == "profile" && !d.Profile {
		h.page(w, http.StatusConflict, pageData{Title: "No profile", Message: "This server offers no IMAP, so there is no profile to install. The link was not used."})
		return
	}
	l, err = h.opt.Links.UseSetupLink(r.Context(), id, now)
	if errors.Is(err, store.ErrNotFound) { // replaced or revoked meanwhile
		h.notFound(w)
		return
	}
	if err != nil {
		h.log.Error("setup link use failed", "err", err)
		h.unavailable(w)
		return
	}
	if l.Sealed == nil { // another request used it first, or it expired just now
		h.gone(w, l, now)
		return
	}
	pw, err := auth.OpenSetupPassword(raw, l.Account, l.Device, l.Sealed)
	if err != nil {
		h.log.Error("setup link: the sealed password does not open", "user", acct.Name, "device", l.Device, "err", err)
		h.page(w, http.StatusInternalServerError, pageData{Title: "Error",
			Message: "This link could not be read. Ask for a new one (postfach device setup)."})
		return
	}
	h.log.Info("setup link used", "user", acct.Name, "device", l.Device, "remote", remote, "what", what)
	if what == "settings" {
		d.Title = "Mail settings for " + l.Device
		d.Password = auth.FormatDevicePassword(pw)
		h.page(w, http.StatusOK, d)
		return
	}
	body := profileAccount{Address: acct.Name, Device: l.Device, Password: pw, Mail: h.opt.Mail}.mobileconfig()
	hdr.Set("Content-Type", ProfileContentType)
	hdr.Set("Content-Disposition", `attachment; filename="`+profileFileName(h.opt.Mail.Host, l.Device)+`"`)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// profileFileName is the profile's file name: host and device are host
// name and device name characters only, nothing to quote.
func profileFileName(host, device string) string {
	return strings.ToLower(host) + "-" + device + ".mobileconfig"
}

// gone answers 410 for a link that was used or has expired at now, and
// reports whether it did.
func (h *setupHandler) gone(w http.ResponseWriter, l *store.SetupLink, now time.Time) bool {
	switch {
	case !l.Used.IsZero():
		h.page(w, http.StatusGone, pageData{Title: "Link used",
			Message: "This setup link was used on " + l.Used.UTC().Format("2006-01-02 at 15:04 MST") +
				" and works only once. If that was not you, tell the administrator, who can revoke the device. For a new link, ask the administrator (postfach device setup)."})
		return true
	case !now.Before(l.Expires):
		h.page(w, http.StatusGone, pageData{Title: "Link expired",
			Message: "This setup link expired on " + l.Expires.UTC().Format("2006-01-02 at 15:04 MST") +
				". For a new link, ask the administrator (postfach device setup)."})
		return true
	}
	return false
}

func (h *setupHandler) notFound(w http.ResponseWriter) {
	h.page(w, http.StatusNotFound, pageData{Title: "Unknown link",
		Message: "This setup link is not valid: it may be mistyped or cut short, replaced by a newer link, or its device was revoked. Open the link exactly as you got it, or ask the administrator for a new one."})
}

func (h *setupHandler) unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "60")
	h.page(w, http.StatusServiceUnavailable, pageData{Title: "Try again", Message: "The server could not answer just now. Try again in a minute."})
}

// pageData fills setupPage.
type pageData struct {
	Title   string
	Message string // a page with only a message (errors, spent links)
	Address string
	Device  string
	Host    string
	Expires string
	Profile bool // a profile can be made (there is IMAP)
	Mail    MailServers
	// Password is set on the settings page only, formatted in groups.
	Password string
}

func (h *setupHandler) page(w http.ResponseWriter, code int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := setupPage.Execute(w, d); err != nil {
		h.log.Debug("setup page not sent", "err", err)
	}
}

var setupPage = template.Must(template.New("setup").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 36em; margin: 1em auto; padding: 0 1em; line-height: 1.45; }
button { font-size: 1.1em; padding: .6em 1em; margin: .3em 0; width: 100%; }
code, .pw { font-family: ui-monospace, monospace; }
.pw { font-size: 1.4em; letter-spacing: .05em; }
table { border-collapse: collapse; } td { padding: .2em .8em .2em 0; vertical-align: top; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>
{{else if .Password}}<p>The settings of <b>{{.Address}}</b> for the device <b>{{.Device}}</b>. This page is shown only once: type the password into the mail app now, or write it down. The link no longer works.</p>
<table>
<tr><td>User name</td><td><code>{{.Address}}</code></td></tr>
<tr><td>Password</td><td class="pw">{{.Password}}</td></tr>
<tr><td></td><td>(the spaces may be left out; capitals do not matter)</td></tr>
<tr><td>Server</td><td><code>{{.Host}}</code></td></tr>
{{with .Mail}}{{if .IMAPS}}<tr><td>IMAP</td><td>port {{.IMAPS}}, SSL/TLS</td></tr>{{end}}
{{if .IMAP}}<tr><td>IMAP</td><td>port {{.IMAP}}, STARTTLS</td></tr>{{end}}
{{if .POP3S}}<tr><td>POP3</td><td>port {{.POP3S}}, SSL/TLS</td></tr>{{end}}
{{if .POP3}}<tr><td>POP3</td><td>port {{.POP3}}, STARTTLS</td></tr>{{end}}
{{if .Submissions}}<tr><td>Sending (SMTP)</td><td>port {{.Submissions}}, SSL/TLS</td></tr>{{end}}
{{if .Submission}}<tr><td>Sending (SMTP)</td><td>port {{.Submission}}, STARTTLS</td></tr>{{end}}
{{if not (or .Submissions .Submission)}}<tr><td>Sending</td><td>not offered by this server</td></tr>{{end}}{{end}}
</table>
<p>Choose IMAP if you can: every device then sees the same mail and folders.</p>
{{else}}<p>This link sets up the mail account <b>{{.Address}}</b> on the device <b>{{.Device}}</b>, with a password of its own. It works <b>once</b>, until {{.Expires}}.</p>
{{if .Profile}}<h2>iPhone, iPad, Mac</h2>
<form method="post"><input type="hidden" name="what" value="profile"><button type="submit">Install the mail profile</button></form>
<p>Then open <i>Settings</i>: <i>Profile Downloaded</i> appears at the top (on a Mac: <i>System Settings</i>, <i>Privacy &amp; Security</i>, <i>Profiles</i>). Tap <i>Install</i> and confirm. The profile is marked <i>Not Verified</i> because it is not signed; it sets up only this mail account. Open this page in Safari.</p>
{{end}}<h2>Android and other devices</h2>
<form method="post"><input type="hidden" name="what" value="settings"><button type="submit">Show the settings and the password</button></form>
<p>Then add an account in your mail app (Thunderbird, K-9 Mail, FairEmail, Gmail, Outlook...) with your address and the password shown; most apps find the server themselves, otherwise type in the settings shown.</p>
<p>Either button uses up the link. If you are not about to set up {{.Device}}, close this page.</p>
{{end}}</body>
</html>
`))
