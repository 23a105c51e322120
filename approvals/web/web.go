// Package web is the approver page of MCP Mediator, served under
// /approvals by `mediator serve`: sign-in, a live queue (Server-Sent
// Events), a detail view with the whole chain context, approve or deny
// with a reason, optional time-boxed grants, history with filters and a
// session's chain view.
//
// Every page is an html/template, so every tool-supplied string is
// escaped; no script runs inline (one external file, app.js), and every
// response carries a strict Content-Security-Policy. Every form carries a
// CSRF token; sessions live in HttpOnly SameSite=Strict cookies.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the page is mounted.
const Prefix = "/approvals"

// HistoryFunc returns a session's chain records, oldest first.
type HistoryFunc = approvals.HistoryFunc

// SSO trusts an identity header set by an authenticating proxy, only on
// requests that come from one of Proxies.
type SSO struct {
	// Header names the user, e.g. X-Forwarded-User.
	Header string
	// Proxies are the addresses the proxy connects from.
	Proxies []netip.Prefix
	// Role is given to a proxy-authenticated user without an account
	// (default auditor: reading only).
	Role mediator.ApproverRole
}

// Config configures the page.
type Config struct {
	Queue    *approvals.Queue
	Accounts mediator.ApproverDirectory
	History  HistoryFunc
	// Tools lists and decides tool-definition changes (nil: no view).
	Tools ToolReviews
	SSO   *SSO
	// SecureCookies marks cookies Secure even on plain HTTP (set it when
	// a TLS-terminating proxy fronts the mediator). Over TLS they always are.
	SecureCookies bool
	// PublicURL is the page's address as approvers' browsers reach it
	// (approvals.url). When set, a form's Origin must be its scheme and
	// host; else the scheme of the request (https over TLS or with
	// SecureCookies, http otherwise) and its Host.
	PublicURL string
	// SessionTTL bounds a sign-in (default 8 h).
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Done ends the live streams (server shutdown).
	Done <-chan struct{}
}

// Handler serves the approver page.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	tmpl     *template.Template
	mux      *http.ServeMux
	sessions *sessions
	limiter  *limiter // failed sign-ins per name: locks the name
	// addrLimiter slows failed sign-ins per address (50 at once, then one
	// every 6 s): it slows a guesser without locking other names out.
	addrLimiter *bucket
}

// New returns the page's handler, to be mounted at Prefix + "/".
func New(cfg Config) (*Handler, error) {
	if cfg.Queue == nil || cfg.Accounts == nil {
		return nil, errors.New("approvals web: Queue and Accounts are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.SSO != nil && cfg.SSO.Role == "" {
		cfg.SSO.Role = mediator.RoleAuditor
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, sessions: newSessions(cfg.SessionTTL),
		limiter: newLimiter(5, 5*time.Minute), addrLimiter: newBucket(50, 6*time.Second)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))
	m.HandleFunc("GET "+Prefix+"/login", h.loginPage)
	m.HandleFunc("POST "+Prefix+"/login", h.login)
	m.HandleFunc("POST "+Prefix+"/logout", h.authed(h.logout))
	m.HandleFunc("GET "+Prefix+"/{$}", h.authed(h.queuePage))
	m.HandleFunc("GET "+Prefix+"/queue/rows", h.authed(h.queueRows))
	m.HandleFunc("GET "+Prefix+"/events", h.authed(h.events))
	m.HandleFunc("GET "+Prefix+"/a/{id}", h.authed(h.detailPage))
	m.HandleFunc("POST "+Prefix+"/a/{id}/decide", h.authed(h.decide))
	m.HandleFunc("GET "+Prefix+"/history", h.authed(h.historyPage))
	m.HandleFunc("GET "+Prefix+"/session", h.authed(h.sessionPage))
	m.HandleFunc("GET "+Prefix+"/tools", h.authed(h.toolsPage))
	m.HandleFunc("POST "+Prefix+"/tools/review", h.authed(h.reviewTool))
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	h.mux = m
}

// ServeHTTP sets the security headers and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// user is who is signed in for this request.
type user struct {
	Name string
	Role mediator.ApproverRole
	CSRF string
	SSO  bool
}

type userKey struct{}

func userFrom(r *http.Request) *user {
	u, _ := r.Context().Value(userKey{}).(*user)
	return u
}

// authed admits signed-in users (session cookie or trusted SSO header).
// A POST must also carry the session's CSRF token and, when the browser
// sends one, a same-origin Origin header.
func (h *Handler) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := h.identify(r)
		if u == nil {
			if r.Method == http.MethodGet && r.URL.Path != Prefix+"/events" && r.URL.Path != Prefix+"/queue/rows" {
				http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
				return
			}
			h.fail(w, r, http.StatusUnauthorized, "Sign in first.")
			return
		}
		if r.Method == http.MethodPost {
			if err := h.checkPost(w, r, u.CSRF); err != nil {
				h.log.Warn("approvals: form refused", "user", u.Name, "path", r.URL.Path, "err", err)
				h.cfg.Queue.RecordRefusal(r.Context(), mediator.Approval{ID: r.PathValue("id")},
					"approvals/form", u.Name, fmt.Errorf("%s from %s: %w", r.URL.Path, r.RemoteAddr, err))
				h.fail(w, r, http.StatusForbidden, err.Error())
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

var errCSRF = errors.New("this form is missing its security token or the token is stale; reload the page and try again")

// maxFormBytes bounds a posted form: room for edited arguments of
// mediator.MaxEditedArgumentsBytes, URL-encoded, beside the other fields.
const maxFormBytes = 4*mediator.MaxEditedArgumentsBytes + 16<<10

// checkPost parses a bounded form and checks its CSRF token and origin.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request, want string) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errors.New("the form could not be read (too large or malformed)")
	}
	// "null" is what browsers send under strict referrer settings or from
	// opaque origins; the CSRF token decides those.
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !strings.EqualFold(o, h.origin(r)) {
		return fmt.Errorf("the form was posted from another site (Origin %q, this page is %s)", cut(o, 128), h.origin(r))
	}
	if !tokenEqual(r.PostForm.Get("csrf"), want) {
		return errCSRF
	}
	return nil
}

// origin is the Origin a same-site form carries: scheme and host of
// PublicURL when configured, else of the request (https over TLS, or
// behind a TLS-terminating proxy as SecureCookies says).
func (h *Handler) origin(r *http.Request) string {
	if u, err := url.Parse(h.cfg.PublicURL); err == nil && h.cfg.PublicURL != "" && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	scheme := "http"
	if r.TLS != nil || h.cfg.SecureCookies {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// cut bounds untrusted text quoted in an error.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// pageData is what every page template receives.
type pageData struct {
	Title string
	User  *user
	Nav   string
	Error string
	Flash string
	Body  any
}

// A page is drawn whole before it is sent: a template error answers 500
// instead of a page cut off mid-form (a decision form without its
// fields, under HTTP 200).
func (h *Handler) render(w http.ResponseWriter, status int, name string, d pageData) {
	var b bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&b, name, d); err != nil {
		h.log.Error("approvals: render", "template", name, "err", err)
		http.Error(w, "The page could not be drawn (a template error); the mediator's log says why. Nothing was decided.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail renders an error page (or plain text for scripts) with status.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if r.Header.Get("Accept") == "text/event-stream" || r.URL.Path == Prefix+"/queue/rows" {
		http.Error(w, msg, status)
		return
	}
	h.render(w, status, "error.html", pageData{Title: http.StatusText(status), User: userFrom(r), Error: msg})
}
