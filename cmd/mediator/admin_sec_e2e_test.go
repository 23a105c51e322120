package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy/token"
)

// partnerToken signs claims for the audiences aud with key, as another
// issuer trusted through auth.pem_file would.
func partnerToken(t *testing.T, key ed25519.PrivateKey, agent string, roles []string, aud ...string) string {
	t.Helper()
	c := token.ClaimsFor(mediator.Agent{ID: agent, Roles: roles})
	now := time.Now()
	c.Issuer, c.Audience, c.ID = token.DefaultIssuer, aud, rand.Text()
	c.IssuedAt, c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(10*time.Minute))
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 14, finding 1: a token signed by any key the mediator trusts for
// agents, with roles ["admin"], reached /admin/v1, and POST
// /admin/v1/upstreams {"command": "/bin/sh", ...} ran a command on the
// host. Now admin tokens are signed by the mediator's own key for their
// own audience, are refused at /mcp, and the API starts only the commands
// admin.allowed_commands lists (none by default). Every refusal is
// recorded.
func TestE2EAdminAPITrustsOnlyItsOwnKey(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemDir := t.TempDir()
	pemPath := filepath.Join(pemDir, "partner.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "auth: {pem_file: "+pemPath+"}\nagent: {id: e2e-agent}\n")
	cfg := filepath.Join(p.Dir, "mediator.yaml")
	pwned := filepath.Join(p.Dir, "pwned")
	shell := `{"name":"pwn","command":"/bin/sh","args":["-c","touch ` + pwned + `"]}`
	upstreams := p.Admin + adminPrefix + "/upstreams"

	// The partner's key vouches for agents: its agent token works at /mcp.
	agentTok := partnerToken(t, priv, "partner-bot", nil, token.DefaultAudience)
	if st, _, body := postInitialize(t, p.URL, agentTok); st != http.StatusOK {
		t.Fatalf("partner agent token at /mcp: %d %s", st, body)
	}
	// The attack: the partner's key, the admin role, either audience.
	for _, aud := range []string{token.DefaultAudience, token.DefaultAudience + token.AdminAudienceSuffix} {
		forged := partnerToken(t, priv, "partner-bot", []string{adminRole}, aud)
		st, _, body := rawRequest(t, http.MethodPost, upstreams, forged, "", shell, nil)
		if st != http.StatusUnauthorized || !strings.Contains(body, "own key") && !strings.Contains(body, "admin audience") {
			t.Errorf("partner-signed admin token (aud %s): %d %s; want 401", aud, st, body)
		}
	}

	admin := mintCLI(t, p.Dir, "--admin", "--config", cfg)
	// An admin token is not accepted where agents connect.
	if st, _, body := postInitialize(t, p.URL, admin); st != http.StatusUnauthorized || !strings.Contains(body, "admin token") {
		t.Errorf("admin token at /mcp: %d %s; want 401", st, body)
	}
	// A genuine admin may not start a program the operator did not list.
	if st, _, body := rawRequest(t, http.MethodPost, upstreams, admin, "", shell, nil); st != http.StatusForbidden || !strings.Contains(body, "admin.allowed_commands") {
		t.Errorf("admin registering /bin/sh: %d %s; want 403 naming admin.allowed_commands", st, body)
	}
	// ...but works otherwise.
	if st, _, body := rawRequest(t, http.MethodGet, p.Admin+adminPrefix+"/alert", admin, "", "", nil); st != http.StatusOK {
		t.Errorf("admin GET /alert: %d %s", st, body)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the shell command ran on the host")
	}

	p.stop(t)
	var partner, disallowed, atMCP int
	for _, r := range exportRecords(t, p.Dir, p.DB) {
		if r.Outcome != mediator.OutcomeDenied || r.RemoteAddr == "" {
			continue
		}
		switch {
		case r.Method == "admin/upstream.add" && r.AgentID == "" && r.Decision.Rule == "admin.api":
			partner++
		case r.Method == "admin/upstream.add" && r.AgentID == cliAdminAgent:
			disallowed++
		case strings.Contains(r.Error, "this is an admin token"):
			atMCP++
		}
	}
	if partner != 2 || disallowed != 1 || atMCP != 1 {
		t.Fatalf("records: partner-signed %d (want 2), disallowed command %d (want 1), admin token at /mcp %d (want 1)", partner, disallowed, atMCP)
	}
}
