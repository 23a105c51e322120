package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/textproto"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/tracing"
)

// TracingConfig exports OpenTelemetry traces over OTLP/HTTP: a span per
// mediated call with a child per step, joined to the agent's trace and
// carried on to the upstream. Off unless Endpoint is set.
type TracingConfig struct {
	// Endpoint is the collector's OTLP/HTTP URL, e.g.
	// http://127.0.0.1:4318 (/v1/traces is added when it has no path).
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces kept, 0 to 1 (default 1); a
	// call whose agent sent a trace context follows the agent's choice.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the spans' service.name (default mcp-mediator).
	ServiceName string `yaml:"service_name"`
	// HeadersEnv names an environment variable holding headers to send
	// with each export, "Name=value" separated by commas (a collector's
	// API key), so that they are not in the config file.
	HeadersEnv string `yaml:"headers_env"`
}

// validate names the key and the fix.
func (t TracingConfig) validate() []error {
	if t.Endpoint == "" {
		if t.SampleRatio != nil || t.ServiceName != "" || t.HeadersEnv != "" {
			return []error{errors.New("tracing: set but tracing.endpoint is empty; set it to your collector's OTLP/HTTP URL (e.g. http://127.0.0.1:4318) or remove the tracing section")}
		}
		return nil
	}
	var errs []error
	if _, err := tracing.ExporterURL(t.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("tracing.endpoint: %w", err))
	}
	if r := t.SampleRatio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio: %v is not between 0 and 1 (1 keeps every trace, 0.1 one in ten)", *r))
	}
	if len(t.ServiceName) > 128 {
		errs = append(errs, errors.New("tracing.service_name: longer than 128 bytes"))
	}
	return errs
}

// parseOTLPHeaders reads "Name=value,Name2=value2" (the form of
// OTEL_EXPORTER_OTLP_HEADERS). An error never quotes a value: it may be
// a key.
func parseOTLPHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || !validHeaderName(name) {
			return nil, fmt.Errorf("header %d is not Name=value with a valid header name", i+1)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("header %s: its value holds a line break or NUL", name)
		}
		h[textproto.CanonicalMIMEHeaderKey(name)] = strings.TrimSpace(value)
	}
	return h, nil
}

func validHeaderName(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// newTracer starts the exporter (nil when tracing is off).
func newTracer(t TracingConfig, lookup func(string) (string, bool)) (*tracing.Tracer, error) {
	if t.Endpoint == "" {
		return nil, nil
	}
	cfg := tracing.Config{Endpoint: t.Endpoint, SampleRatio: 1, ServiceName: t.ServiceName, Version: version}
	if t.SampleRatio != nil {
		cfg.SampleRatio = *t.SampleRatio
	}
	if t.HeadersEnv != "" {
		v, ok := lookup(t.HeadersEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("tracing.headers_env: the environment variable %s is not set (or empty); set it to Name=value pairs, e.g. Authorization=Bearer <key>", t.HeadersEnv)
		}
		h, err := parseOTLPHeaders(v)
		if err != nil {
			return nil, fmt.Errorf("tracing.headers_env: %s: %w", t.HeadersEnv, err)
		}
		cfg.Headers = h
	}
	tr, err := tracing.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return tr, nil
}

// tracerDep is the chain's Tracer (nil when off: a nil *tracing.Tracer in
// the interface would not be nil).
func (a *app) tracerDep() mediator.Tracer {
	if a.tracer == nil {
		return nil
	}
	return a.tracer
}

// stopTracing exports the spans still queued, within 5 seconds.
func (a *app) stopTracing() {
	if a.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.log.Warn("traces not all exported at shutdown", "err", err)
	}
}
