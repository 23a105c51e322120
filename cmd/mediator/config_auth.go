package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/policy"
	"github.com/mcp-mediator/mediator/policy/token"
)

// AuthConfig is the auth: block: how agents calling over HTTP prove who
// they are. Every request needs a bearer token (an agent passport JWT)
// unless Anonymous names the identity of requests without one.
type AuthConfig struct {
	// Issuer is the required iss of tokens, and the iss of minted ones.
	Issuer string `yaml:"issuer"`
	// Audience must be in the aud of tokens, and is the aud of minted ones.
	Audience string `yaml:"audience"`
	// KeyFile is the mediator's own Ed25519 key (PEM, PKCS#8, mode 0600),
	// created on first use; it signs `mediator token mint` tokens.
	KeyFile string `yaml:"key_file"`
	// JWKSFile, PEMFile and JWKSURL add keys of other issuers. The URL is
	// fetched at start and refreshed in the background.
	JWKSFile string `yaml:"jwks_file"`
	PEMFile  string `yaml:"pem_file"`
	JWKSURL  string `yaml:"jwks_url"`
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration `yaml:"leeway"`
	// MaxLifetime is the longest token lifetime accepted and minted.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// Anonymous, when set, is the identity of HTTP requests without a
	// token (loopback listeners only). nil: such requests are refused.
	Anonymous *AgentConfig `yaml:"anonymous"`

	// stdio is set by `mediator stdio`: one local agent, whose identity
	// is the agent: block, so no keys are loaded.
	stdio bool
}

// defaultAuth is the auth: block of the embedded default. Only the
// embedded default (a loopback demo) has an anonymous identity; a config
// file has one only if it names one (see Parse).
func defaultAuth() AuthConfig {
	return AuthConfig{
		Issuer: token.DefaultIssuer, Audience: token.DefaultAudience, KeyFile: "mediator.key",
		Leeway: token.DefaultLeeway, MaxLifetime: token.DefaultMaxLifetime,
		Anonymous: &AgentConfig{ID: "local-agent", Roles: []string{"writer", "support"}, Owner: "local-user"},
	}
}

// validate checks the auth: block and names the key and the fix.
func (a *AuthConfig) validate() []error {
	var errs []error
	if a.Issuer == "" || a.Audience == "" {
		errs = append(errs, errors.New("auth.issuer / auth.audience: empty; use e.g. mcp-mediator (the default)"))
	}
	if a.KeyFile == "" {
		errs = append(errs, errors.New("auth.key_file: empty; name the mediator's signing key file, e.g. mediator.key"))
	}
	if a.Leeway < 0 || a.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("auth.leeway: %s; use 0s..5m (default 30s)", a.Leeway))
	}
	if a.MaxLifetime < time.Second || a.MaxLifetime > 24*time.Hour {
		errs = append(errs, fmt.Errorf("auth.max_lifetime: %s; use 1s..24h (default 1h)", a.MaxLifetime))
	}
	if a.JWKSURL != "" {
		if err := checkJWKSURL(a.JWKSURL); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Anonymous != nil && a.Anonymous.ID == "" {
		errs = append(errs, errors.New("auth.anonymous.id: empty; name the identity of requests without a token, or remove auth.anonymous to require tokens"))
	}
	return errs
}

// checkJWKSURL requires an absolute https URL (plain http only to a
// loopback host).
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("auth.jwks_url: %q is not an absolute URL", s)
	}
	ip := net.ParseIP(u.Hostname())
	loopback := u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return fmt.Errorf("auth.jwks_url: %q; use https (plain http only to a loopback host)", s)
	}
	return nil
}

// tokenOptions are the Verifier options every command shares.
func (c *Config) tokenOptions(log *slog.Logger) []token.Option {
	return []token.Option{
		token.WithIssuer(c.Auth.Issuer), token.WithAudience(c.Auth.Audience),
		token.WithLeeway(c.Auth.Leeway), token.WithMaxLifetime(c.Auth.MaxLifetime),
		token.WithLogger(log),
	}
}

// loadKey loads the mediator's signing key, creating it on first use.
func (c *Config) loadKey(log *slog.Logger) (*token.Key, error) {
	path := c.path(c.Auth.KeyFile)
	key, created, err := token.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("auth.key_file: %w", err)
	}
	if created {
		log.Info("created the mediator's signing key", "file", path, "kid", key.KID())
	}
	return key, nil
}

// authenticator is the Authenticator of a running mediator.
type authenticator interface {
	mediator.Authenticator
	Close() error
}

// staticAuth is the identity of a stdio mediator: the agent: block.
type staticAuth struct{ policy.StaticIdentity }

func (staticAuth) Close() error { return nil }

// newAuthenticator builds the mediator's authenticator. stdio serves one
// local agent as the agent: identity. serve verifies bearer tokens with
// the mediator's key and the configured key sources, honours revocations
// stored in revs (polled, so `mediator token revoke` from a shell applies
// within about a second), and gives requests without a token the
// anonymous identity only when the config names one.
func newAuthenticator(ctx context.Context, c *Config, revs mediator.RevocationStore, log *slog.Logger) (authenticator, error) {
	stdio := agentFromConfig(c.Agent)
	if c.Auth.stdio {
		return staticAuth{policy.StaticIdentity{Agent: stdio}}, nil
	}
	key, err := c.loadKey(log)
	if err != nil {
		return nil, err
	}
	opts := append(c.tokenOptions(log), token.WithStdioAgent(&stdio), token.WithRevocationStore(revs, 0))
	if c.Auth.JWKSFile != "" {
		opts = append(opts, token.WithJWKSFile(c.path(c.Auth.JWKSFile)))
	}
	if c.Auth.PEMFile != "" {
		opts = append(opts, token.WithPEMFile(c.path(c.Auth.PEMFile)))
	}
	if c.Auth.JWKSURL != "" {
		opts = append(opts, token.WithJWKSURL(c.Auth.JWKSURL, 0))
	}
	if c.Auth.Anonymous != nil {
		anon := agentFromConfig(*c.Auth.Anonymous)
		opts = append(opts, token.WithAnonymous(&anon))
		log.Warn("requests without a bearer token get the anonymous identity (auth.anonymous); "+
			"remove auth.anonymous to require tokens", "agent", anon.ID, "listen", c.Listen)
	}
	v, err := token.New(ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	log.Info("agent tokens verified", "issuer", c.Auth.Issuer, "audience", c.Auth.Audience, "kid", key.KID(),
		"anonymous", c.Auth.Anonymous != nil)
	return v, nil
}
