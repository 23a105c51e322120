package tools

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcp-mediator/mediator/mediator"
)

func ptr[T any](v T) *T { return &v }

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		cfg    Config
		want   []string // substrings of the error; none means valid
	}{
		{"stdio ok", "a command is a complete stdio upstream",
			Config{Name: "files", Command: "./bin/x", Args: []string{"--root", "."}, Env: map[string]string{"A": "1"}}, nil},
		{"http ok", "a url is a complete http upstream",
			Config{Name: "remote", URL: "https://example.com/mcp", Headers: map[string]string{"Authorization": "Bearer x"}}, nil},
		{"sse ok", "transport sse with a url",
			Config{Name: "old", URL: "http://127.0.0.1:3001/sse", Transport: "sse"}, nil},
		{"empty prefix ok", "prefix \"\" means no namespace",
			Config{Name: "x", Command: "x", Prefix: ptr("")}, nil},
		{"overrides ok", "known risk and data class",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {Risk: "high", DataClass: "financial"}},
				Resources: ResourceOverride{DataClass: "pii"}}, nil},
		{"missing name", "every upstream needs a name",
			Config{Command: "x"}, []string{"upstream (unnamed): name is missing"}},
		{"bad name", "names are lower-case identifiers",
			Config{Name: "My Server", Command: "x"}, []string{`name "My Server" may only contain`, `"my-server"`}},
		{"neither", "an upstream needs a command or a url",
			Config{Name: "x"}, []string{"neither command nor url is set"}},
		{"both", "command and url are exclusive",
			Config{Name: "x", Command: "x", URL: "http://a/mcp"}, []string{"both command and url are set"}},
		{"bad url", "a url must be absolute http(s)",
			Config{Name: "remote", URL: "htp:/x"}, []string{`upstream (remote): url "htp:/x" is not an absolute http(s) URL: use e.g. http://127.0.0.1:3001/mcp`}},
		{"relative url", "a url must have a host",
			Config{Name: "remote", URL: "/mcp"}, []string{"is not an absolute http(s) URL"}},
		{"bad transport", "only stdio, http and sse exist",
			Config{Name: "x", URL: "http://a/mcp", Transport: "websocket"}, []string{`transport "websocket" is not known`}},
		{"stdio with url", "transport stdio needs a command",
			Config{Name: "x", URL: "http://a/mcp", Transport: "stdio"}, []string{"transport stdio needs command"}},
		{"http with command", "transport http needs a url",
			Config{Name: "x", Command: "x", Transport: "http"}, []string{`transport "http" needs url`}},
		{"negative timeout", "a timeout cannot be negative",
			Config{Name: "x", Command: "x", Timeout: -time.Second}, []string{"timeout -1s is negative"}},
		{"unitless timeout", "a tiny timeout is a missing unit",
			Config{Name: "x", Command: "x", Timeout: 60}, []string{"use a duration with a unit"}},
		{"bad risk", "risk must be a known level",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {Risk: "extreme"}}},
			[]string{`tools.t.risk "extreme" is not a risk level: use low, medium, high or critical`}},
		{"bad data class", "data class must be known",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {DataClass: "secret"}}},
			[]string{`tools.t.data_class "secret" is not a data class`}},
		{"argument in two kinds", "an argument has one kind",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {Paths: []string{"target"}, Plain: []string{"target"}}}},
			[]string{`tools.t: argument "target" is in both paths and plain: give it one kind`}},
		{"argument named twice", "a list names an argument once",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {URLs: []string{"u", "u"}}}},
			[]string{`tools.t.urls names "u" twice`}},
		{"bad argument name", "argument names are printable",
			Config{Name: "x", Command: "x", Tools: map[string]ToolOverride{"t": {Paths: []string{"a b", ""}}}},
			[]string{`tools.t.paths: "a b" is not an argument name`, `tools.t.paths: "" is not an argument name`}},
		{"bad resource class", "resources data class must be known",
			Config{Name: "x", Command: "x", Resources: ResourceOverride{DataClass: "top"}},
			[]string{`resources.data_class "top"`}},
		{"bad env key", "env keys are variable names",
			Config{Name: "x", Command: "x", Env: map[string]string{"A-B": "1"}}, []string{`env key "A-B"`}},
		{"headers on stdio", "headers are for remote upstreams",
			Config{Name: "x", Command: "x", Headers: map[string]string{"X": "1"}}, []string{"headers only apply to a remote"}},
		{"reserved header", "transport headers cannot be configured",
			Config{Name: "x", URL: "http://a/mcp", Headers: map[string]string{"Mcp-Session-Id": "1"}},
			[]string{"headers.Mcp-Session-Id is set by the MCP transport"}},
		{"header injection", "header values cannot hold line breaks",
			Config{Name: "x", URL: "http://a/mcp", Headers: map[string]string{"X": "a\r\nB: c"}}, []string{"line break"}},
		{"env on remote", "env and args only apply to stdio",
			Config{Name: "x", URL: "http://a/mcp", Env: map[string]string{"A": "1"}}, []string{"only apply to a stdio command"}},
		{"bad prefix", "prefixes are identifiers too",
			Config{Name: "x", Command: "x", Prefix: ptr("a b")}, []string{`prefix "a b"`}},
		{"isolation session ok", "session isolation with limits",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{Max: 8, PerAgent: 2, Idle: time.Minute}}, nil},
		{"isolation shared ok", "shared is the spelled-out default",
			Config{Name: "x", URL: "http://a/mcp", Isolation: IsolationShared}, nil},
		{"bad isolation", "only shared and session exist",
			Config{Name: "x", Command: "x", Isolation: "process"}, []string{`isolation "process" is not known: use shared or session`}},
		{"sessions without isolation", "limits of a mode that is not on are a mistake",
			Config{Name: "x", Command: "x", Sessions: SessionLimits{Max: 4}}, []string{"sessions is set but isolation is not session"}},
		{"per agent over max", "one agent cannot hold more than the upstream's cap",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{Max: 2, PerAgent: 3}},
			[]string{"sessions.per_agent 3 is more than sessions.max 2"}},
		{"per agent over default max", "the default max counts too",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{PerAgent: 20}},
			[]string{"sessions.per_agent 20 is more than sessions.max 16"}},
		{"negative max", "a cap cannot be negative",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{Max: -1}},
			[]string{"must be between 1 and 10000"}},
		{"tiny idle", "a unitless idle is a missing unit",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{Idle: 30}},
			[]string{"sessions.idle 30ns must be between 1s and 168h"}},
		{"huge idle", "idle is bounded",
			Config{Name: "x", Command: "x", Isolation: IsolationSession, Sessions: SessionLimits{Idle: 200 * time.Hour}},
			[]string{"sessions.idle 200h0m0s must be between 1s and 168h"}},
		{"several problems", "all problems are reported at once",
			Config{Name: "X", Timeout: -1}, []string{"name \"X\"", "neither command nor url", "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("%s: want valid, got %v", tt.reason, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: want an error, got none", tt.reason)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error does not wrap ErrInvalidConfig: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", tt.reason, err, w)
				}
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		cfgs   []Config
		want   []string
	}{
		{"distinct", "different names and prefixes",
			[]Config{{Name: "a", Command: "a"}, {Name: "b", Command: "b"}}, nil},
		{"two empty prefixes", "prefix \"\" may be shared; collisions are refused per name",
			[]Config{{Name: "a", Command: "a", Prefix: ptr("")}, {Name: "b", Command: "b", Prefix: ptr("")}}, nil},
		{"index in path", "errors name the list position",
			[]Config{{Name: "a", Command: "a"}, {Name: "remote", URL: "htp:/x"}},
			[]string{`upstreams[1] (remote): url "htp:/x" is not an absolute http(s) URL: use e.g. http://127.0.0.1:3001/mcp`}},
		{"duplicate name", "names identify upstreams",
			[]Config{{Name: "a", Command: "a"}, {Name: "a", Command: "b", Prefix: ptr("x__")}},
			[]string{`upstreams[1] (a): name "a" is already used by upstreams[0]`}},
		{"duplicate prefix", "equal prefixes would collide",
			[]Config{{Name: "a", Command: "a", Prefix: ptr("p__")}, {Name: "b", Command: "b", Prefix: ptr("p__")}},
			[]string{`upstreams[1] (b): prefix "p__" is already used by upstreams[0] (a)`}},
		{"prefix equals default", "an explicit prefix can clash with another's default",
			[]Config{{Name: "a", Command: "a"}, {Name: "b", Command: "b", Prefix: ptr("a__")}},
			[]string{`prefix "a__" is already used`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAll(tt.cfgs)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("%s: want valid, got %v", tt.reason, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: want an error", tt.reason)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", tt.reason, err, w)
				}
			}
		})
	}
}

func TestConfigExpand(t *testing.T) {
	vars := map[string]string{"TOKEN": "s3cret", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := []struct {
		name    string
		reason  string
		cfg     Config
		env     map[string]string
		headers map[string]string
		args    []string
		wantErr []string
	}{
		{"header", "header values are expanded",
			Config{Name: "r", URL: "http://a/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"}},
			nil, map[string]string{"Authorization": "Bearer s3cret"}, nil, nil},
		{"env", "env values are expanded; empty is a value",
			Config{Name: "s", Command: "x", Env: map[string]string{"A": "${TOKEN}-${EMPTY}", "B": "$$5 and $HOME"}},
			map[string]string{"A": "s3cret-", "B": "$5 and $HOME"}, nil, nil, nil},
		{"args untouched", "only env and headers are marked for expansion",
			Config{Name: "s", Command: "x", Args: []string{"${TOKEN}"}},
			nil, nil, []string{"${TOKEN}"}, nil},
		{"unset", "an unset variable names the key and the variable",
			Config{Name: "r", URL: "http://a/mcp", Headers: map[string]string{"Authorization": "Bearer ${REMOTE_TOKEN}"}},
			nil, nil, nil, []string{"upstream (r): headers.Authorization: variable REMOTE_TOKEN is not set"}},
		{"unterminated", "a malformed reference is an error",
			Config{Name: "s", Command: "x", Env: map[string]string{"A": "${TOKEN"}},
			nil, nil, nil, []string{"env.A: unterminated ${"}},
		{"bad name", "references are ${NAME}",
			Config{Name: "s", Command: "x", Env: map[string]string{"A": "${1X}"}},
			nil, nil, nil, []string{"${1X} is not a valid variable reference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := cloneConfig(tt.cfg)
			err := tt.cfg.Expand(lookup)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("%s: want an error", tt.reason)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q lacks %q", tt.reason, err, w)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks a variable's value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.reason, err)
			}
			for k, v := range tt.env {
				if tt.cfg.Env[k] != v {
					t.Errorf("%s: env.%s = %q, want %q", tt.reason, k, tt.cfg.Env[k], v)
				}
			}
			for k, v := range tt.headers {
				if tt.cfg.Headers[k] != v {
					t.Errorf("%s: headers.%s = %q, want %q", tt.reason, k, tt.cfg.Headers[k], v)
				}
			}
			for i, a := range tt.args {
				if tt.cfg.Args[i] != a {
					t.Errorf("%s: args[%d] = %q, want %q", tt.reason, i, tt.cfg.Args[i], a)
				}
			}
			for k, v := range orig.Headers {
				if strings.Contains(v, "${") && tt.cfg.Headers[k] == v {
					t.Errorf("header %s not expanded", k)
				}
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
- name: files
  command: ./bin/demo-upstream
  args: [--root, ./sandbox]
  env: {DEMO_MODE: "1"}
  dir: ""
  prefix: ""
  timeout: 60s
  required: true
  tools: {transfer_funds: {risk: high, data_class: financial}}
  resources: {data_class: pii}
- name: remote
  url: http://127.0.0.1:3001/mcp
  transport: sse
  headers: {Authorization: "Bearer ${REMOTE_TOKEN}"}
  required: false
`
	var cfgs []Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfgs); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := ValidateAll(cfgs); err != nil {
		t.Fatalf("validate: %v", err)
	}
	files, remote := cfgs[0], cfgs[1]
	if files.Prefix == nil || *files.Prefix != "" || files.EffectivePrefix() != "" {
		t.Errorf("prefix \"\" not kept apart from absent: %v", files.Prefix)
	}
	if remote.Prefix != nil || remote.EffectivePrefix() != "remote__" {
		t.Errorf("absent prefix: got %v", remote.Prefix)
	}
	if files.Timeout != time.Minute || remote.EffectiveTimeout() != DefaultTimeout {
		t.Errorf("timeouts: %v %v", files.Timeout, remote.EffectiveTimeout())
	}
	if files.Tools["transfer_funds"].Risk != mediator.RiskHigh || files.Resources.DataClass != mediator.DataPII {
		t.Errorf("overrides: %+v %+v", files.Tools, files.Resources)
	}
	if remote.IsRequired() || !files.IsRequired() || remote.EffectiveTransport() != TransportSSE {
		t.Errorf("required/transport: %v %v %v", remote.IsRequired(), files.IsRequired(), remote.EffectiveTransport())
	}

	dec = yaml.NewDecoder(strings.NewReader("- name: x\n  comand: y\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfgs); err == nil {
		t.Error("an unknown key was accepted")
	}
}

func TestConfigLogValueHidesSecrets(t *testing.T) {
	c := Config{Name: "r", URL: "http://user:pw@a/mcp", Headers: map[string]string{"Authorization": "Bearer s3cret"}}
	got := c.LogValue().String()
	if strings.Contains(got, "s3cret") || strings.Contains(got, "pw@") {
		t.Errorf("LogValue leaks a secret: %s", got)
	}
	if !strings.Contains(got, "Authorization") {
		t.Errorf("LogValue should name the header keys: %s", got)
	}
}
