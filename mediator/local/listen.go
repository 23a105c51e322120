// Package local lets many `mediator stdio` processes share one running
// `mediator serve` on the same machine, so that policy, behaviour state,
// approvals and the audit chain have one owner and one writer.
//
// The serve listens on a Unix socket next to its database (Listen); the
// socket is the current user's alone (mode 0600, and on Linux every
// connection's peer user is checked: SameUser). A stdio mediator started
// with the same config and database finds it (Probe) and relays its
// agent's newline-delimited JSON-RPC to the serve's streamable HTTP
// endpoint on that socket (Bridge); when none answers it opens the
// database itself, as before.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// MaxSocketPath is the longest path a Unix socket may have (sun_path
// holds 108 bytes on Linux, 104 on the BSDs, with the terminating NUL).
const MaxSocketPath = 103

// HelloPath is where a serve says who it is, on its local socket.
const HelloPath = "/local/hello"

// MCPPath is the streamable HTTP endpoint on the local socket.
const MCPPath = "/mcp"

// Hello is what a serve tells a stdio mediator that probes its socket, so
// that it attaches only to a serve that runs the same configuration on the
// same database.
type Hello struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
	// Config is the serve's config file (absolute), or "" for the
	// embedded default; ConfigDigest the SHA-256 of what it loaded.
	Config       string `json:"config"`
	ConfigDigest string `json:"config_digest"`
	// Database is the serve's database (absolute path).
	Database string `json:"database"`
	// MaxRequestBytes is the serve's limits.max_request_bytes.
	MaxRequestBytes int64 `json:"max_request_bytes"`
}

// HelloHandler answers a probe with h.
func HelloHandler(h Hello) http.Handler {
	body, _ := json.Marshal(h)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// Listen listens on the Unix socket path, readable and writable by the
// current user only. A socket file left by a serve that is gone (nothing
// accepts on it) is replaced; one a running process answers on is not:
// the error says so. Connections accepted carry their peer's user where
// the system reports it (see SameUser, ConnContext).
func Listen(path string) (net.Listener, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("local socket %s: the path is %d bytes, longer than a Unix socket may be (%d); set local.socket to a shorter path, or off", path, len(path), MaxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("local socket %s: a file that is not a socket is in the way; remove it or set local.socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("local socket %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("local socket %s: removing a stale socket: %w", path, err)
		}
	}
	// The socket is created in a directory of its own first, so that it is
	// never reachable by others between its creation and its chmod.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".mediator-sock-")
	if err != nil {
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	staged := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", staged)
	if err != nil {
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the file is renamed; Close removes it
	if err := os.Chmod(staged, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	if err := os.Rename(staged, path); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	return &listener{UnixListener: ul, path: path, file: fi}, nil
}

// ErrInUse is returned by Listen when another process answers on the path.
var ErrInUse = errors.New("another process (a serve on the same database?) already answers on it; stop it, or set local.socket to another path, or off")

type listener struct {
	*net.UnixListener
	path string
	file os.FileInfo // the socket file as created, so that Close removes only it
}

// Accept returns the next connection with its peer's credentials.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	p := Peer{PID: -1, UID: -1}
	if uid, pid, ok := peerCred(c); ok {
		p = Peer{UID: uid, PID: pid, Known: true}
	}
	return &conn{UnixConn: c, peer: p}, nil
}

// Close stops listening and removes the socket file, unless another
// listener has replaced it since.
func (l *listener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
		_ = os.Remove(l.path)
	}
	return err
}

type conn struct {
	*net.UnixConn
	peer Peer
}

// Peer is the process at the other end of a local connection.
type Peer struct {
	UID, PID int
	// Known is false where the system does not report it (then only
	// the socket's file mode stands between other users and it).
	Known bool
}

type peerKey struct{}

// ConnContext is an http.Server ConnContext that keeps a connection's peer
// for SameUser.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*conn); ok {
		return context.WithValue(ctx, peerKey{}, lc.peer)
	}
	return ctx
}

// PeerOf is the peer of the connection r came on (Known false if none).
func PeerOf(r *http.Request) Peer {
	p, _ := r.Context().Value(peerKey{}).(Peer)
	return p
}

// SameUser admits a request only from a process of the user this process
// runs as (the system's report of the peer; where it reports none, the
// socket's mode 0600 is the check).
func SameUser(r *http.Request) error {
	p := PeerOf(r)
	if !p.Known {
		return nil
	}
	if uid := os.Geteuid(); p.UID != uid {
		return fmt.Errorf("the local socket serves only processes of user %d; process %d runs as user %d: run mediator stdio as the serve's user, or over HTTP with a token", uid, p.PID, p.UID)
	}
	return nil
}

// Probe asks the serve on the socket path who it is. An error means no
// serve to attach to: no socket, nothing accepting on it, or something
// that does not answer as a serve.
func Probe(ctx context.Context, path string) (*Hello, error) {
	c := Client(path)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+HelloPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no serve answers on %s: %w", path, ErrNoServe)
		}
		return nil, fmt.Errorf("probing %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("probing %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	var h Hello
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h); err != nil {
		return nil, fmt.Errorf("probing %s: %w", path, err)
	}
	return &h, nil
}

// ErrNoServe is wrapped by Probe's error when nothing listens on the socket.
var ErrNoServe = errors.New("no running serve")

// Client is an HTTP client whose every connection goes to the Unix
// socket path, whatever the URL's host.
func Client(path string) *http.Client {
	d := net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:        128,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}
