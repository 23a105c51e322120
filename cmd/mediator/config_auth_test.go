package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadYAML(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(path, func(string) (string, bool) { return "", false })
}

func TestAuthConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, want string }{
		{"empty issuer", "auth: {issuer: ''}\n", "auth.issuer"},
		{"empty key file", "auth: {key_file: ''}\n", "auth.key_file"},
		{"negative leeway", "auth: {leeway: -1s}\n", "auth.leeway"},
		{"huge leeway: expired tokens would live on", "auth: {leeway: 1h}\n", "auth.leeway"},
		{"zero max lifetime", "auth: {max_lifetime: 0s}\n", "auth.max_lifetime"},
		{"week-long tokens", "auth: {max_lifetime: 168h}\n", "auth.max_lifetime"},
		{"JWKS over plain http to a remote host", "auth: {jwks_url: 'http://idp.example.com/jwks'}\n", "use https"},
		{"JWKS URL not a URL", "auth: {jwks_url: 'jwks.json'}\n", "not an absolute URL"},
		{"anonymous without id", "auth: {anonymous: {roles: [writer]}}\n", "auth.anonymous.id"},
		{"unknown auth key", "auth: {isuer: x}\n", "field isuer not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadYAML(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.want)
			}
		})
	}
}

// Only the embedded default has an anonymous identity; a config file has
// one only if it names one.
func TestAuthConfigAnonymous(t *testing.T) {
	t.Parallel()
	def := Default()
	if def.Auth.Anonymous == nil || def.Auth.Anonymous.ID != def.Agent.ID {
		t.Fatalf("embedded default anonymous = %+v; want the default agent", def.Auth.Anonymous)
	}
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, yaml := range []string{"", "log: {level: info}\n", "auth: {issuer: x}\n", "auth: {anonymous: null}\n"} {
		c, err := loadYAML(t, yaml)
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if c.Auth.Anonymous != nil {
			t.Errorf("config %q has anonymous identity %+v; want none (tokens required)", yaml, c.Auth.Anonymous)
		}
		if c.Auth.Issuer == "" || c.Auth.KeyFile != "mediator.key" || c.Auth.MaxLifetime != time.Hour || c.Auth.Leeway != 30*time.Second {
			t.Errorf("config %q: auth defaults lost: %+v", yaml, c.Auth)
		}
	}
	c, err := loadYAML(t, "auth:\n  anonymous: {id: kiosk, roles: [reader]}\n  jwks_url: http://127.0.0.1:9/jwks\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Anonymous == nil || c.Auth.Anonymous.ID != "kiosk" {
		t.Fatalf("named anonymous identity = %+v", c.Auth.Anonymous)
	}
}

func TestQuickstartRequiresTokens(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(filepath.Join("..", "..", "examples", "quickstart", "mediator.yaml"), func(string) (string, bool) { return "x", true })
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Anonymous != nil {
		t.Fatalf("the quickstart config lets requests without a token in as %+v", c.Auth.Anonymous)
	}
}
