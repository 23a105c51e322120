package judge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/mcp-mediator/mediator/mediator"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultThreshold   = 0.5
	DefaultConcurrency = 4
	DefaultCacheSize   = 1024
	DefaultCacheTTL    = 10 * time.Minute
	DefaultMaxRecent   = 5
)

// MaxResponseBytes bounds the body of a response from the model endpoint; a
// longer body fails the request, which then falls back.
const MaxResponseBytes = 1 << 20

const (
	// maxTokens bounds the reply of an ordinary chat model: a score and one
	// sentence.
	maxTokens = 200
	// maxReasoningTokens bounds the reply of a model go-openai treats as a
	// reasoning model, whose hidden reasoning counts against the limit.
	maxReasoningTokens = 2048
	// temperature is as close to 0 as go-openai can send: it omits 0.
	temperature = 0.0001
	// seed makes replies as reproducible as the endpoint allows.
	seed = 7
)

// Config configures a Judge. Only BaseURL and Model are required.
type Config struct {
	// BaseURL is the OpenAI-compatible base URL, to which
	// "/chat/completions" is appended: https://api.openai.com/v1,
	// http://localhost:11434/v1 (Ollama), a vLLM server, ... It must be an
	// absolute http or https URL without user info, query or fragment.
	BaseURL string
	// APIKey is sent as a bearer token; empty sends no Authorization header
	// (Ollama). It is never logged.
	APIKey string
	// Model is the model name the endpoint knows.
	Model string
	// Timeout bounds each judgement, including the wait for a free slot;
	// DefaultTimeout when 0.
	Timeout time.Duration
	// Threshold is the score below which the call is Below; DefaultThreshold
	// when 0. It must be within 0..1.
	Threshold float64
	// Below is the effect of a score below Threshold: mediator.EffectApprove
	// (the default when empty) or mediator.EffectDeny.
	Below mediator.Effect
	// Fallback is the effect when the judge cannot answer (timeout, busy,
	// error, malformed reply, refusal): mediator.EffectApprove (the default
	// when empty), mediator.EffectDeny or mediator.EffectAllow.
	Fallback mediator.Effect
	// Concurrency is the maximum number of requests in flight;
	// DefaultConcurrency when 0. A judgement that finds them all busy waits
	// up to Timeout, then falls back with "busy".
	Concurrency int
	// CacheSize is the number of opinions kept (least recently used are
	// evicted); DefaultCacheSize when 0, no cache when negative.
	CacheSize int
	// CacheTTL is how long an opinion is reused; DefaultCacheTTL when 0.
	CacheTTL time.Duration
	// MaxRecent is how many of Request.Recent are sent (the last ones);
	// DefaultMaxRecent when 0, none when negative.
	MaxRecent int
	// HTTPClient is used for the requests when set. It is copied, and its
	// transport wrapped to enforce MaxResponseBytes; nil uses a client with
	// http.DefaultTransport.
	HTTPClient *http.Client
}

// String describes c without its API key.
func (c Config) String() string {
	return fmt.Sprintf("judge.Config{BaseURL:%q Model:%q APIKey:%s Timeout:%s Threshold:%g Below:%q Fallback:%q Concurrency:%d CacheSize:%d CacheTTL:%s MaxRecent:%d}",
		c.BaseURL, c.Model, redacted(c.APIKey), c.Timeout, c.Threshold, c.Below, c.Fallback, c.Concurrency, c.CacheSize, c.CacheTTL, c.MaxRecent)
}

// LogValue makes log/slog print c without its API key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("model", c.Model),
		slog.String("api_key", redacted(c.APIKey)),
		slog.Duration("timeout", c.Timeout),
		slog.Float64("threshold", c.Threshold),
		slog.String("below", string(c.Below)),
		slog.String("fallback", string(c.Fallback)),
		slog.Int("concurrency", c.Concurrency),
		slog.Int("cache_size", c.CacheSize),
		slog.Duration("cache_ttl", c.CacheTTL),
		slog.Int("max_recent", c.MaxRecent),
	)
}

func redacted(key string) string {
	if key == "" {
		return "none"
	}
	return "redacted"
}

// Request is one call to judge.
type Request struct {
	// TaskID identifies the task; it is part of the cache key and is not
	// sent to the model.
	TaskID string
	// Purpose is the purpose the task declared.
	Purpose string
	// Tool is the tool's catalog name.
	Tool string
	// ToolDescription is the tool's description as its upstream supplied it.
	ToolDescription string
	// Arguments are the call's arguments, already redacted by the caller.
	Arguments map[string]any
	// Recent are the session's earlier calls, oldest first; the last
	// Config.MaxRecent are sent.
	Recent []RecentCall
}

// RecentCall is one earlier call of the session.
type RecentCall struct {
	Tool string
	// Arguments are the call's arguments as JSON, already redacted and
	// capped by the caller. Invalid JSON is sent as a string.
	Arguments json.RawMessage
	// Verdict is what became of the call (e.g. "allow", "deny").
	Verdict string
}

// Stats counts what a Judge did since New.
type Stats struct {
	// Requests is the number of judgements asked for (calls of Judge).
	Requests uint64
	// CacheHits is the number answered from the cache.
	CacheHits uint64
	// CacheMisses is the number not answered from the cache (every
	// judgement when the cache is disabled).
	CacheMisses uint64
	// Fallbacks is the number that ended in the fallback effect, for any
	// reason.
	Fallbacks uint64
	// Timeouts is the number of fallbacks because the model did not answer
	// in time.
	Timeouts uint64
}

// Judge asks a chat model for its opinion on calls. It is safe for
// concurrent use.
type Judge struct {
	client    *openai.Client
	model     string
	reasoning bool
	timeout   time.Duration
	threshold float64
	below     mediator.Effect
	fallback  mediator.Effect
	maxRecent int
	sem       chan struct{}
	cache     *lru // nil when disabled

	requests, cacheHits, cacheMisses, fallbacks, timeouts atomic.Uint64
}

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("invalid judge configuration")

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// New validates cfg, fills in the defaults and returns a Judge. It does not
// contact the endpoint.
func New(cfg Config) (*Judge, error) {
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		return nil, configError("the base URL is empty; set it to the OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or http://localhost:11434/v1")
	case err != nil:
		// Neither the URL nor the parse error (which quotes parts of it)
		// is echoed: it might hold a secret.
		return nil, configError("the base URL does not parse as a URL; it should look like https://api.openai.com/v1")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, configError("the base URL scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		return nil, configError("the base URL has no host")
	case u.User != nil:
		return nil, configError("the base URL must not carry user info; put the key in APIKey")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, configError("the base URL must not have a query or fragment")
	}
	if cfg.Model == "" {
		return nil, configError("the model is empty; name the model the endpoint serves")
	}
	if cfg.Timeout < 0 {
		return nil, configError("the timeout %s is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if math.IsNaN(cfg.Threshold) || cfg.Threshold < 0 || cfg.Threshold > 1 {
		return nil, configError("the threshold %g is not within 0..1", cfg.Threshold)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	switch cfg.Below {
	case "":
		cfg.Below = mediator.EffectApprove
	case mediator.EffectApprove, mediator.EffectDeny:
	default:
		return nil, configError("the effect below the threshold %q is not approve or deny", cfg.Below)
	}
	switch cfg.Fallback {
	case "":
		cfg.Fallback = mediator.EffectApprove
	case mediator.EffectApprove, mediator.EffectDeny, mediator.EffectAllow:
	default:
		return nil, configError("the fallback effect %q is not approve, deny or allow", cfg.Fallback)
	}
	if cfg.Concurrency < 0 {
		return nil, configError("the concurrency %d is negative", cfg.Concurrency)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.CacheTTL < 0 {
		return nil, configError("the cache TTL %s is negative", cfg.CacheTTL)
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	switch {
	case cfg.MaxRecent == 0:
		cfg.MaxRecent = DefaultMaxRecent
	case cfg.MaxRecent < 0:
		cfg.MaxRecent = 0
	}

	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &limitTransport{base: base, max: MaxResponseBytes}

	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	oc.HTTPClient = hc

	j := &Judge{
		client:    openai.NewClientWithConfig(oc),
		model:     cfg.Model,
		timeout:   cfg.Timeout,
		threshold: cfg.Threshold,
		below:     cfg.Below,
		fallback:  cfg.Fallback,
		maxRecent: cfg.MaxRecent,
		sem:       make(chan struct{}, cfg.Concurrency),
	}
	// go-openai refuses a temperature other than 1 (and max_tokens) for the
	// models it knows to be reasoning models; those get neither.
	probe := openai.ChatCompletionRequest{Model: cfg.Model, Temperature: temperature}
	j.reasoning = openai.NewReasoningValidator().Validate(probe) != nil
	if cfg.CacheSize > 0 {
		j.cache = newLRU(cfg.CacheSize, cfg.CacheTTL)
	}
	return j, nil
}

// Stats returns the counters.
func (j *Judge) Stats() Stats {
	return Stats{
		Requests:    j.requests.Load(),
		CacheHits:   j.cacheHits.Load(),
		CacheMisses: j.cacheMisses.Load(),
		Fallbacks:   j.fallbacks.Load(),
		Timeouts:    j.timeouts.Load(),
	}
}

// Judge returns the model's opinion on r. It never fails: when no opinion
// can be had, the result is the configured fallback effect with Fallback
// naming why ("timeout", "busy", "malformed reply: ...", "refusal: ...",
// "error: ..."). It returns within Config.Timeout, or sooner when ctx ends.
func (j *Judge) Judge(ctx context.Context, r Request) mediator.JudgeResult {
	j.requests.Add(1)
	key := cacheKey(r)
	if j.cache != nil {
		if res, ok := j.cache.get(key, time.Now()); ok {
			j.cacheHits.Add(1)
			res.Cached = true
			return res
		}
	}
	j.cacheMisses.Add(1)

	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()

	select {
	case j.sem <- struct{}{}:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return j.fail("error: canceled")
		}
		return j.fail("busy")
	}
	res, fb := j.ask(ctx, r)
	<-j.sem
	if fb != "" {
		return j.fail(fb)
	}
	if j.cache != nil {
		j.cache.put(key, res, time.Now())
	}
	return res
}

// fail counts a fallback and returns its result.
func (j *Judge) fail(reason string) mediator.JudgeResult {
	j.fallbacks.Add(1)
	if reason == "timeout" {
		j.timeouts.Add(1)
	}
	return mediator.JudgeResult{Effect: j.fallback, Fallback: reason}
}

// ask sends one request. It returns the opinion, or the fallback reason.
func (j *Judge) ask(ctx context.Context, r Request) (mediator.JudgeResult, string) {
	user, err := userMessage(r, j.maxRecent)
	if err != nil {
		return mediator.JudgeResult{}, "error: " + clean(err.Error(), maxReasonBytes)
	}
	req := openai.ChatCompletionRequest{
		Model: j.model,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: systemPrompt},
			{Role: openai.ChatMessageRoleUser, Content: user},
		},
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:        "judgement",
				Description: "How consistent the tool call is with the task's purpose.",
				Schema:      judgementSchema,
				Strict:      true,
			},
		},
		Seed: new(seed),
	}
	if j.reasoning {
		req.MaxCompletionTokens = maxReasoningTokens
	} else {
		req.Temperature = temperature
		//lint:ignore SA1019 Ollama's OpenAI API knows max_tokens but not yet max_completion_tokens
		req.MaxTokens = maxTokens
	}
	resp, err := j.client.CreateChatCompletion(ctx, req)
	if err != nil {
		return mediator.JudgeResult{}, classify(ctx, err)
	}
	score, rationale, fb := interpret(&resp)
	if fb != "" {
		return mediator.JudgeResult{}, fb
	}
	effect := mediator.EffectAllow
	if score < j.threshold {
		effect = j.below
	}
	return mediator.JudgeResult{Score: score, Rationale: rationale, Effect: effect}, ""
}
