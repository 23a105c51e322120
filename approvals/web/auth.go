package web

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
)

// Cookie names.
const (
	sessionCookie = "mediator_approvals"
	loginCookie   = "mediator_login_csrf"
)

// sessions are the signed-in browsers, in memory: a restart signs
// everyone out, which is the safe failure.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

type session struct {
	user    user
	expires time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

func (s *sessions) create(name string, role mediator.ApproverRole) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, se := range s.m {
		if now.After(se.expires) {
			delete(s.m, id)
		}
	}
	id := rand.Text() + rand.Text()
	s.m[id] = &session{user: user{Name: name, Role: role, CSRF: rand.Text()}, expires: now.Add(s.ttl)}
	return id
}

func (s *sessions) get(id string) *user {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[id]
	if !ok || time.Now().After(se.expires) {
		delete(s.m, id)
		return nil
	}
	u := se.user
	return &u
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func tokenEqual(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// identify returns the signed-in user: a trusted proxy's header first,
// then the session cookie.
func (h *Handler) identify(r *http.Request) *user {
	if u := h.ssoUser(r); u != nil {
		return u
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	u := h.sessions.get(c.Value)
	if u == nil {
		return nil
	}
	// The account may have been removed or its role changed since.
	acct, err := h.cfg.Accounts.Approver(r.Context(), u.Name)
	if err != nil {
		h.sessions.drop(c.Value)
		return nil
	}
	u.Role = acct.Role
	return u
}

// ssoUser trusts the identity header only from a configured proxy. Its
// CSRF token is derived per user from a process secret.
func (h *Handler) ssoUser(r *http.Request) *user {
	sso := h.cfg.SSO
	if sso == nil || sso.Header == "" {
		return nil
	}
	name := strings.TrimSpace(r.Header.Get(sso.Header))
	if name == "" || !fromProxy(r.RemoteAddr, sso.Proxies) {
		return nil
	}
	// The proxy is trusted to authenticate, not to spell: a name that
	// could pass for another is refused like a typed one.
	if err := mediator.CheckIdentity(name); err != nil {
		h.refuseSignIn(r, clientIP(r.RemoteAddr), name, fmt.Errorf("identity header %s: %w", sso.Header, err))
		return nil
	}
	role := sso.Role
	if acct, err := h.cfg.Accounts.Approver(r.Context(), name); err == nil {
		role = acct.Role
	}
	return &user{Name: name, Role: role, CSRF: h.ssoCSRF(name), SSO: true}
}

func fromProxy(remote string, proxies []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range proxies {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

var ssoSecret = rand.Text()

func (h *Handler) ssoCSRF(name string) string {
	return approvals.Sign([]byte(ssoSecret), "csrf", []byte(name))[7:]
}

// loginPage shows the sign-in form with a fresh double-submit CSRF token.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.identify(r) != nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, "")
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := rand.Text()
	http.SetCookie(w, h.cookie(r, loginCookie, tok, 10*time.Minute))
	h.render(w, status, "login.html", pageData{Title: "Sign in", Error: msg, Body: tok})
}

// login checks the CSRF token, the rate limit and the password.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !tokenEqual(r.PostForm.Get("csrf"), c.Value) {
		h.log.Warn("approvals: sign-in form without a valid CSRF token", "remote", r.RemoteAddr)
		h.renderLogin(w, r, http.StatusForbidden, errCSRF.Error())
		return
	}
	name, pw := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password")
	ip := clientIP(r.RemoteAddr)
	if err := mediator.CheckIdentity(name); err != nil {
		h.refuseSignIn(r, ip, name, err)
		h.renderLogin(w, r, http.StatusBadRequest, "That name cannot be an approver's: "+err.Error())
		return
	}
	// A name is locked after a few failures; an address is only slowed,
	// after many more, so that one guessed name does not lock everyone
	// behind the same address out. The lock is on the name's canonical
	// form: "Alice", "alice " and "ALICE" share one count.
	lockKey := "user:" + name
	if canon, err := mediator.NormalizeIdentity(name); err == nil {
		lockKey = "user:" + canon
	}
	wait := h.addrLimiter.wait(ip)
	switch {
	case !h.limiter.allow(lockKey):
		h.refuseSignIn(r, ip, name, errors.New("the name is locked after repeated failed sign-ins"))
		h.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins for this name. Wait a few minutes and try again.")
		return
	case wait > 0:
		wait = wait.Round(time.Second) + time.Second
		h.refuseSignIn(r, ip, name, fmt.Errorf("the address is slowed after many failed sign-ins (next try in %s)", wait))
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		h.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address. Try again in "+wait.String()+".")
		return
	}
	acct, err := h.checkAccount(r, name, pw)
	if err != nil {
		h.addrLimiter.fail(ip)
		h.limiter.fail(lockKey)
		h.refuseSignIn(r, ip, name, errors.New("wrong name or password"))
		h.renderLogin(w, r, http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	h.limiter.reset(lockKey)
	id := h.sessions.create(acct.Name, acct.Role)
	http.SetCookie(w, h.cookie(r, sessionCookie, id, h.cfg.SessionTTL))
	http.SetCookie(w, h.cookie(r, loginCookie, "", -1))
	h.log.Info("approvals: signed in", "user", acct.Name, "role", acct.Role, "remote", ip)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

var errBadLogin = errors.New("wrong name or password")

func (h *Handler) checkAccount(r *http.Request, name, pw string) (mediator.ApproverAccount, error) {
	acct, err := h.cfg.Accounts.Approver(r.Context(), name)
	if err != nil {
		approvals.CheckNoAccount(pw)
		return acct, errBadLogin
	}
	if !approvals.CheckPassword(acct.PasswordHash, pw) {
		return acct, errBadLogin
	}
	return acct, nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.sessions.drop(c.Value)
	}
	http.SetCookie(w, h.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// cookie is HttpOnly, SameSite=Strict, scoped to the page, Secure over
// TLS or when configured.
func (h *Handler) cookie(r *http.Request, name, value string, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.cfg.SecureCookies}
	if ttl < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(ttl.Seconds())
	}
	return c
}

func clientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// refuseSignIn logs and records a refused sign-in.
func (h *Handler) refuseSignIn(r *http.Request, ip, name string, err error) {
	h.log.Warn("approvals: sign-in refused", "remote", ip, "user", mediator.QuoteIdentity(name), "err", err)
	h.cfg.Queue.RecordRefusal(r.Context(), mediator.Approval{}, "approvals/signin", mediator.QuoteIdentity(name),
		fmt.Errorf("sign-in from %s: %w", ip, err))
}

// limiter counts failed sign-ins per key in a fixed window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	m      map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, m: map[string]*failures{}}
}

func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.m[key]
	if !ok || time.Since(f.since) > l.window {
		delete(l.m, key)
		return true
	}
	return f.n < l.max
}

func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.m[key]
	if !ok || time.Since(f.since) > l.window {
		if !l.room() {
			return
		}
		f = &failures{since: time.Now()}
		l.m[key] = f
	}
	f.n++
}

// room prunes expired entries and reports whether a new one fits, so a
// spray of names cannot grow memory without bound (nor evict the entries
// that are limiting the sprayer).
func (l *limiter) room() bool {
	const maxKeys = 10000
	if len(l.m) < maxKeys {
		return true
	}
	for k, f := range l.m {
		if time.Since(f.since) > l.window {
			delete(l.m, k)
		}
	}
	return len(l.m) < maxKeys
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// bucket slows failed sign-ins per address with a token bucket: burst
// failures are free, then one more every interval. A guesser gets a few
// tries a minute; an approver behind the same address (a shared NAT) waits
// at most one interval, never the minutes of a lock.
type bucket struct {
	mu       sync.Mutex
	burst    float64
	interval time.Duration
	now      func() time.Time
	m        map[string]*tokens
}

type tokens struct {
	n  float64 // tokens left
	at time.Time
}

func newBucket(burst int, interval time.Duration) *bucket {
	return &bucket{burst: float64(burst), interval: interval, now: time.Now, m: map[string]*tokens{}}
}

// fill refills key's tokens up to now; the caller holds mu.
func (b *bucket) fill(key string) *tokens {
	now := b.now()
	t, ok := b.m[key]
	if !ok {
		return nil
	}
	t.n = min(b.burst, t.n+float64(now.Sub(t.at))/float64(b.interval))
	t.at = now
	if t.n >= b.burst {
		delete(b.m, key)
		return nil
	}
	return t
}

// wait is how long key must wait before its next attempt (0: now).
func (b *bucket) wait(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.fill(key)
	if t == nil || t.n >= 1 {
		return 0
	}
	return time.Duration((1 - t.n) * float64(b.interval))
}

// fail spends one of key's tokens.
func (b *bucket) fail(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.fill(key)
	if t == nil {
		if len(b.m) >= 10000 {
			for k := range b.m {
				b.fill(k) // drops the full ones
			}
			if len(b.m) >= 10000 {
				return
			}
		}
		t = &tokens{n: b.burst, at: b.now()}
		b.m[key] = t
	}
	t.n = max(0, t.n-1)
}
