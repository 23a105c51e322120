package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "listn: 127.0.0.1:1\n", "field listn not found"},
		{"unknown upstream key", "upstreams:\n  - name: a\n    comand: x\n", "field comand not found"},
		{"missing command and url", "upstreams:\n  - name: a\n", "upstreams[0]"},
		{"duplicate server name", "upstreams:\n  - {name: a, command: x}\n  - {name: a, command: y}\n", "duplicate"},
		{"bad url", "upstreams:\n  - {name: a, url: 'htp:/x'}\n", "url"},
		{"both command and url", "upstreams:\n  - {name: a, command: x, url: 'http://127.0.0.1:1/mcp'}\n", "upstreams[0]"},
		{"bad risk", "upstreams:\n  - {name: a, command: x, tools: {t: {risk: extreme}}}\n", "risk"},
		{"bad listen", "listen: nowhere\n", "listen"},
		{"empty agent id", "agent: {id: ''}\n", "agent.id"},
		{"half a policy", "policy: {model: m.conf}\n", "policy"},
		{"bad redact regexp", "audit: {redact: ['(']}\n", "audit.redact[0]"},
		{"bad sync", "audit: {sync: sometimes}\n", "audit.sync"},
		{"bad log level", "log: {level: loud}\n", "log.level"},
		{"tiny request cap", "limits: {max_request_bytes: 10}\n", "limits.max_request_bytes"},
		{"unset env var in header", "upstreams:\n  - {name: a, url: 'http://127.0.0.1:1/mcp', headers: {X: '${NOPE_NOT_SET}'}}\n", "NOPE_NOT_SET"},
		{"not YAML", "upstreams: [\n", "yaml"},
		{"webhook without a secret", "approvals: {webhook: {url: 'https://hooks.example.com/x'}}\n", "secret_env must name"},
		{"webhook url and url_env", "approvals: {webhook: {url: 'https://h.example.com/x', url_env: W, format: slack}}\n", "not both"},
		{"webhook url not http", "approvals: {webhook: {url: 'ftp://h.example.com/x', format: slack}}\n", "approvals.webhook.url"},
		{"webhook format unknown", "approvals: {webhook: {url_env: W, format: discord}}\n", "use mediator, slack or teams"},
		{"bad metrics listen", "metrics: {listen: nowhere}\n", "metrics.listen"},
		{"metrics open without a token", "metrics: {listen: '0.0.0.0:9464'}\n", "metrics.token_env"},
		{"metrics on the agent port", "listen: 127.0.0.1:7001\nmetrics: {listen: 127.0.0.1:7001}\n", "its own port"},
		{"metrics token without listen", "metrics: {token_env: X}\n", "metrics.listen is empty"},
		{"tracing endpoint not a URL", "tracing: {endpoint: '127.0.0.1:4318'}\n", "tracing.endpoint"},
		{"tracing over gRPC", "tracing: {endpoint: 'grpc://127.0.0.1:4317'}\n", "OTLP/HTTP collector"},
		{"tracing credentials in the URL", "tracing: {endpoint: 'http://u:pw@127.0.0.1:4318'}\n", "tracing.headers_env"},
		{"tracing sample ratio over 1", "tracing: {endpoint: 'http://127.0.0.1:4318', sample_ratio: 2}\n", "tracing.sample_ratio"},
		{"tracing settings without endpoint", "tracing: {sample_ratio: 0.5}\n", "tracing.endpoint is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path, func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigAcceptsExamples(t *testing.T) {
	t.Parallel()
	lookup := func(string) (string, bool) { return "x", true }
	c, err := LoadConfig(filepath.Join("..", "..", "examples", "quickstart", "mediator.yaml"), lookup)
	if err != nil {
		t.Fatalf("quickstart config: %v", err)
	}
	if len(c.Upstreams) != 1 || c.Upstreams[0].Name != "demo" {
		t.Fatalf("quickstart upstreams: %+v", c.Upstreams)
	}
	if _, err := LoadConfig("", lookup); err != nil {
		t.Fatalf("embedded default: %v", err)
	}
}

func TestConfigExpandsOnlyMarkedPlaces(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.yaml")
	yaml := "agent: {id: '${AGENT}'}\nupstreams:\n  - {name: a, command: x, args: ['${ARG}'], env: {K: '${V}'}}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, func(k string) (string, bool) { return "expanded-" + k, true })
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams[0]
	if u.Env["K"] != "expanded-V" {
		t.Fatalf("env value not expanded: %q", u.Env["K"])
	}
	if u.Args[0] != "${ARG}" || c.Agent.ID != "${AGENT}" {
		t.Fatalf("expanded outside the marked places: args %q agent %q", u.Args[0], c.Agent.ID)
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in  string
		ok  bool
		why string
	}{
		{"", true, "empty means from the start"},
		{"2026-11-22T10:00:00Z", true, "RFC 3339"},
		{"24h", true, "a duration back from now"},
		{"yesterday", false, "free text is refused"},
		{"-5h", false, "a negative duration is refused"},
	}
	for _, tc := range cases {
		if _, err := parseSince(tc.in, timeNow()); (err == nil) != tc.ok {
			t.Errorf("%q (%s): err = %v", tc.in, tc.why, err)
		}
	}
}

func TestE2EBadConfigRefusedAtStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("upstreams:\n  - {name: a, url: 'ftp://x'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"serve", "--config", path}, {"stdio", "--config", path}} {
		_, stderr, code := runMediator(t, dir, cmd...)
		if code == 0 || !strings.Contains(stderr, "upstreams[0]") {
			t.Fatalf("%v: exit %d, stderr %q; want a failure naming upstreams[0]", cmd, code, stderr)
		}
	}
	if _, stderr, code := runMediator(t, dir, "serve", "--listen", "0.0.0.0:0"); code == 0 || !strings.Contains(stderr, "loopback") {
		t.Fatalf("non-loopback listen without auth: exit %d %q", code, stderr)
	}
	if out, _, code := runMediator(t, dir, "version"); code != 0 || !strings.HasPrefix(out, "mediator ") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, args := range [][]string{{"serve", "--help"}, {"stdio", "--help"}, {"audit", "verify", "--help"}, {"upstream", "list", "--help"}, {"help"}} {
		out, stderr, code := runMediator(t, dir, args...)
		if code != 0 || !strings.Contains(out+stderr, "Usage") {
			t.Fatalf("%v: exit %d, no usage: %q %q", args, code, out, stderr)
		}
	}
}

// A config file that leaves upstreams or policy to a default says so at
// start: no tools are served, the example policy is in force.
func TestConfigNotices(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bare, err := LoadConfig(write("bare.yaml", "agent: {id: a}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(bare.notices) != 2 || !strings.Contains(bare.notices[0], "names no upstreams") || !strings.Contains(bare.notices[1], "names no policy") {
		t.Errorf("notices of a bare config: %q", bare.notices)
	}
	model, pol := write("model.conf", "x"), write("policy.csv", "x")
	full, err := LoadConfig(write("full.yaml", "policy: {model: "+model+", file: "+pol+"}\nupstreams:\n  - {name: u, url: \"http://127.0.0.1:9/mcp\"}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(full.notices) != 0 {
		t.Errorf("notices of a complete config: %q", full.notices)
	}
	if def, _ := LoadConfig("", nil); len(def.notices) != 0 {
		t.Errorf("the embedded default warns: %q", def.notices)
	}
}

func TestVersionLine(t *testing.T) {
	t.Parallel()
	if v := versionLine(); !strings.HasPrefix(v, "mediator "+version) || !strings.Contains(v, " go1.") {
		t.Errorf("version line %q; want the version and the Go version", v)
	}
}

func TestParseOTLPHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "x-api-key=abc", want: map[string]string{"X-Api-Key": "abc"}},
		{in: "Authorization=Bearer k=1, X-Tenant = t1 ,", want: map[string]string{"Authorization": "Bearer k=1", "X-Tenant": "t1"}},
		{in: "novalue", wantErr: "header 1 is not Name=value"},
		{in: "bad name=v", wantErr: "header 1"},
		{in: "X=a\r\nInjected: 1", wantErr: "line break"},
	}
	for _, tt := range tests {
		got, err := parseOTLPHeaders(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseOTLPHeaders(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("parseOTLPHeaders(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
