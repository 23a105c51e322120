package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/mcp-mediator/mediator/mediator"
	"github.com/mcp-mediator/mediator/mediator/tracing"
)

// OTLPLogsConfig sends every record as an OpenTelemetry log record to an
// OTLP/HTTP collector (audit.ship.otlp).
type OTLPLogsConfig struct {
	// Endpoint is the collector's OTLP/HTTP URL, e.g.
	// http://127.0.0.1:4318 (/v1/logs is added when it has no path);
	// empty: off.
	Endpoint string `yaml:"endpoint"`
	// ServiceName is the records' service.name (default mcp-mediator).
	ServiceName string `yaml:"service_name"`
	// HeadersEnv names an environment variable holding headers to send
	// with each export, "Name=value" separated by commas (a collector's
	// API key), so that they are not in the config file.
	HeadersEnv string `yaml:"headers_env"`
}

func (c *OTLPLogsConfig) validate() []error {
	if c.Endpoint == "" {
		if c.ServiceName != "" || c.HeadersEnv != "" {
			return []error{errors.New("audit.ship.otlp: set but audit.ship.otlp.endpoint is empty; set it to your collector's OTLP/HTTP URL (e.g. http://127.0.0.1:4318) or remove the section")}
		}
		return nil
	}
	if _, err := logsURL(c.Endpoint); err != nil {
		return []error{fmt.Errorf("audit.ship.otlp.endpoint: %w", err)}
	}
	if len(c.ServiceName) > 128 {
		return []error{errors.New("audit.ship.otlp.service_name: longer than 128 bytes")}
	}
	return nil
}

// logsURL is endpoint with /v1/logs as its path when it has none.
func logsURL(endpoint string) (string, error) {
	return tracing.CollectorURL(endpoint, "/v1/logs", "audit.ship.otlp.headers_env")
}

// otlpSink exports records with the OpenTelemetry SDK's OTLP/HTTP log
// exporter, a batch per request, synchronously: a batch is delivered
// when the collector answered 2xx, so the shipper knows where to resume.
// The exporter's own retries are off; the shipper retries and records
// the outage.
type otlpSink struct {
	endpoint string
	exp      *otlploghttp.Exporter
	provider *sdklog.LoggerProvider
	logger   log.Logger
	capture  *captureProcessor
}

func newOTLPSink(ctx context.Context, cfg OTLPLogsConfig, lookup func(string) (string, bool)) (*otlpSink, error) {
	endpoint, err := logsURL(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("audit.ship.otlp.endpoint: %w", err)
	}
	opts := []otlploghttp.Option{otlploghttp.WithEndpointURL(endpoint), otlploghttp.WithTimeout(10 * time.Second),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false})}
	if cfg.HeadersEnv != "" {
		v, ok := lookup(cfg.HeadersEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("audit.ship.otlp.headers_env: the environment variable %s is not set (or empty); set it to Name=value pairs, e.g. Authorization=Bearer <key>", cfg.HeadersEnv)
		}
		h, err := parseOTLPHeaders(v)
		if err != nil {
			return nil, fmt.Errorf("audit.ship.otlp.headers_env: %s: %w", cfg.HeadersEnv, err)
		}
		opts = append(opts, otlploghttp.WithHeaders(h))
	}
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("audit.ship.otlp: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "mcp-mediator"
	}
	capture := &captureProcessor{}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))),
		sdklog.WithProcessor(capture),
		// A record of the chain is shipped whole: the SDK's default
		// limits would cut its body's attributes.
		sdklog.WithAttributeValueLengthLimit(-1), sdklog.WithAttributeCountLimit(-1))
	return &otlpSink{endpoint: endpoint, exp: exp, provider: provider, capture: capture,
		logger: provider.Logger("github.com/mcp-mediator/mediator/audit")}, nil
}

func (sk *otlpSink) kind() string  { return "otlp" }
func (sk *otlpSink) where() string { return sk.endpoint }

// resend: an export the collector answered is delivered; one it did not
// is sent again whole.
func (sk *otlpSink) resend() int64 { return 0 }
func (sk *otlpSink) alive() error  { return nil }

func (sk *otlpSink) send(ctx context.Context, recs []mediator.ChainRecord) (int, error) {
	batch := sk.capture.take(func() {
		for _, r := range recs {
			sk.logger.Emit(ctx, otlpRecord(r))
		}
	})
	if len(batch) != len(recs) {
		return 0, fmt.Errorf("the log SDK made %d records of %d", len(batch), len(recs))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sk.exp.Export(ctx, batch); err != nil {
		return 0, err
	}
	return len(recs), nil
}

func (sk *otlpSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sk.provider.Shutdown(ctx)
	_ = sk.exp.Shutdown(ctx)
}

// otlpRecord is r as a log record: the record itself (JSON, as hashed
// in the chain) as the body, the fields a collector filters on as
// attributes.
func otlpRecord(r mediator.ChainRecord) log.Record {
	var lr log.Record
	lr.SetTimestamp(r.Time)
	lr.SetObservedTimestamp(time.Now())
	lr.SetEventName("mcp_mediator.audit")
	sev, text := log.SeverityInfo, "INFO"
	switch r.Outcome {
	case mediator.OutcomeDenied, mediator.OutcomeUnknown:
		sev, text = log.SeverityWarn, "WARN"
	case mediator.OutcomeFailed:
		sev, text = log.SeverityError, "ERROR"
	}
	lr.SetSeverity(sev)
	lr.SetSeverityText(text)
	body, _ := json.Marshal(r)
	lr.SetBody(attribute.StringValue(string(body)))
	lr.AddAttributes(
		attribute.Int64("mcp_mediator.seq", r.Seq),
		attribute.String("mcp_mediator.id", r.ID),
		attribute.String("mcp_mediator.hash", r.Hash),
		attribute.String("mcp_mediator.agent", r.AgentID),
		attribute.String("mcp_mediator.method", r.Method),
		attribute.String("mcp_mediator.name", r.Name),
		attribute.String("mcp_mediator.outcome", string(r.Outcome)),
		attribute.String("mcp_mediator.effect", string(r.Decision.Effect)),
		attribute.String("mcp_mediator.rule", r.Decision.Rule),
	)
	return lr
}

// captureProcessor hands the records the SDK made during take to its
// caller, instead of queueing them: the shipper exports them itself, so
// that it knows whether they were delivered.
type captureProcessor struct {
	mu   sync.Mutex
	recs []sdklog.Record
}

func (p *captureProcessor) take(emit func()) []sdklog.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = p.recs[:0]
	emit()
	return p.recs
}

func (p *captureProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

// OnEmit runs inside take, under its lock.
func (p *captureProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.recs = append(p.recs, r.Clone())
	return nil
}

func (p *captureProcessor) Shutdown(context.Context) error   { return nil }
func (p *captureProcessor) ForceFlush(context.Context) error { return nil }
