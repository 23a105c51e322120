package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Agent ids, tool names and rules are untrusted text: in a syslog message
// they stay inside their structured-data parameter and on one line.
func TestSyslogMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)
	cases := []struct {
		name string
		rec  mediator.ChainRecord
		want []string
		not  []string
	}{
		{"ok call", mediator.ChainRecord{Seq: 7, ID: "r7", Time: at, AgentID: "bot", Method: "tools/call", Name: "demo__echo",
			Outcome: mediator.OutcomeOK, Decision: mediator.Decision{Effect: mediator.EffectAllow, Rule: "echo"}, Hash: "abc"},
			[]string{"<110>1 2026-12-03T10:00:00.123456Z host mcp-mediator ", " ok [mcpm@32473 seq=\"7\" id=\"r7\" agent=\"bot\"", `rule="echo" hash="abc"] {`}, nil},
		{"a denial is a warning", mediator.ChainRecord{Seq: 8, Time: at, Outcome: mediator.OutcomeDenied},
			[]string{"<108>1 ", " denied "}, nil},
		{"a failure is an error", mediator.ChainRecord{Seq: 9, Time: at, Outcome: mediator.OutcomeFailed},
			[]string{"<107>1 "}, nil},
		{"hostile text", mediator.ChainRecord{Seq: 10, Time: at, AgentID: "evil\"] [forged@1 x=\"1", Name: "a\\b]\nnext line",
			Outcome: "weird outcome"},
			[]string{`agent="evil\"\] [forged@1 x=\"1"`, `name="a\\b\] next line"`, " weird_outcome "}, nil},
	}
	for _, tc := range cases {
		msg := syslogMessage(tc.rec, 13, "host", "mcp-mediator")
		if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
			t.Errorf("%s: not one line: %q", tc.name, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", tc.name, msg, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(msg, n) {
				t.Errorf("%s: %q holds %q", tc.name, msg, n)
			}
		}
		// The structured data is one element: its first unescaped ']'
		// ends it, right before the record.
		sd := msg[strings.Index(msg, "[mcpm@"):]
		for i := 0; i < len(sd); i++ {
			if sd[i] == '\\' {
				i++
				continue
			}
			if sd[i] == ']' {
				if !strings.HasPrefix(sd[i:], "] {") {
					t.Errorf("%s: the structured data ends early: %q", tc.name, sd[:i+1])
				}
				break
			}
		}
	}
}

func TestSyslogConfig(t *testing.T) {
	t.Parallel()
	bad := 30
	for _, tc := range []struct {
		c  SyslogConfig
		ok bool
	}{
		{SyslogConfig{}, true}, {SyslogConfig{Address: "tcp://127.0.0.1:514"}, true}, {SyslogConfig{Address: "udp://siem:514"}, true},
		{SyslogConfig{Address: "http://siem:514"}, false}, {SyslogConfig{Address: "tcp://siem"}, false},
		{SyslogConfig{Address: "tcp://siem:514", Facility: &bad}, false}, {SyslogConfig{Address: "tcp://siem:514", AppName: "a b"}, false},
	} {
		if errs := tc.c.validate(); (len(errs) == 0) != tc.ok {
			t.Errorf("%+v: %v", tc.c, errs)
		}
	}
}

func TestOTLPLogsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    OTLPLogsConfig
		ok   bool
		want string // the URL records are sent to, when ok
	}{
		{OTLPLogsConfig{}, true, ""},
		{OTLPLogsConfig{Endpoint: "http://127.0.0.1:4318"}, true, "http://127.0.0.1:4318/v1/logs"},
		{OTLPLogsConfig{Endpoint: "https://otel.example/"}, true, "https://otel.example/v1/logs"},
		{OTLPLogsConfig{Endpoint: "https://otel.example/custom/logs", HeadersEnv: "OTEL_KEY"}, true, "https://otel.example/custom/logs"},
		{OTLPLogsConfig{Endpoint: "grpc://otel.example:4317"}, false, ""},
		{OTLPLogsConfig{Endpoint: "127.0.0.1:4318"}, false, ""},
		{OTLPLogsConfig{Endpoint: "https://user:secret@otel.example"}, false, ""},
		{OTLPLogsConfig{Endpoint: "http://otel.example", ServiceName: strings.Repeat("s", 129)}, false, ""},
		{OTLPLogsConfig{HeadersEnv: "OTEL_KEY"}, false, ""},
		{OTLPLogsConfig{ServiceName: "svc"}, false, ""},
	} {
		errs := tc.c.validate()
		if (len(errs) == 0) != tc.ok {
			t.Errorf("%+v: %v", tc.c, errs)
			continue
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%+v: the error shows the password: %v", tc.c, err)
			}
		}
		if tc.want != "" {
			if got, err := logsURL(tc.c.Endpoint); err != nil || got != tc.want {
				t.Errorf("logsURL(%q) = %q, %v; want %q", tc.c.Endpoint, got, err, tc.want)
			}
		}
	}
}
