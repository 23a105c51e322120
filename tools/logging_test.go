package tools

import (
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// A shared upstream session is asked for the most verbose level any agent
// session wants, never less than upstreamLogLevel; an agent session's own
// for its level.
func TestLogLevelFor(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]mcp.LoggingLevel
		session string
		want    mcp.LoggingLevel
	}{
		{"nobody set a level", nil, "", upstreamLogLevel},
		{"one asks for debug", map[string]mcp.LoggingLevel{"a": "debug"}, "", "debug"},
		{"less verbose than the default", map[string]mcp.LoggingLevel{"a": "error"}, "", upstreamLogLevel},
		{"the most verbose wins", map[string]mcp.LoggingLevel{"a": "error", "b": "debug", "c": "notice"}, "", "debug"},
		{"a session's own", map[string]mcp.LoggingLevel{"a": "error", "b": "debug"}, "a", "error"},
		{"a session that set none", map[string]mcp.LoggingLevel{"b": "debug"}, "a", upstreamLogLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Registry{logs: logLevels{byKey: tt.set}}
			if got := r.logLevelFor(tt.session); got != tt.want {
				t.Errorf("logLevelFor(%q) = %q, want %q", tt.session, got, tt.want)
			}
		})
	}
}
