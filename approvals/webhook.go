package approvals

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" + hex HMAC-SHA256(secret,
	// timestamp + "." + body); a receiver recomputes it and rejects an old
	// timestamp, so a captured delivery cannot be replayed later.
	SignatureHeader = "X-Mediator-Signature"
	TimestampHeader = "X-Mediator-Timestamp"
)

// Webhook posts each new pending approval as JSON to a URL, off the
// call's path: Notify only queues (dropping, with a log line, when the
// bounded queue is full), and one goroutine delivers with a per-attempt
// timeout and a bounded number of retries with exponential backoff.
type Webhook struct {
	url      string
	format   WebhookFormat
	secret   []byte
	client   *http.Client
	log      *slog.Logger
	queue    chan []byte
	attempts int
	backoff  time.Duration
}

// WebhookOption configures a Webhook.
type WebhookOption func(*Webhook)

// WithWebhookRetries sets the attempts per delivery (default 5) and the
// first backoff (default 1 s, doubling, at most 30 s).
func WithWebhookRetries(attempts int, backoff time.Duration) WebhookOption {
	return func(w *Webhook) { w.attempts, w.backoff = max(attempts, 1), max(backoff, time.Millisecond) }
}

// WithWebhookTimeout bounds one attempt (default 5 s).
func WithWebhookTimeout(d time.Duration) WebhookOption {
	return func(w *Webhook) { w.client.Timeout = d }
}

// WebhookFormat is the shape of a delivery's body.
type WebhookFormat string

// Webhook formats.
const (
	// FormatMediator is the mediator's own JSON event (webhookEvent).
	FormatMediator WebhookFormat = "mediator"
	// FormatSlack is a Slack incoming-webhook message: text and blocks
	// with a Review button.
	FormatSlack WebhookFormat = "slack"
	// FormatTeams is a Microsoft Teams (Workflows) webhook message: an
	// Adaptive Card with the facts and a Review action.
	FormatTeams WebhookFormat = "teams"
)

// ValidWebhookFormat reports whether f is a known format.
func ValidWebhookFormat(f WebhookFormat) bool {
	return f == FormatMediator || f == FormatSlack || f == FormatTeams
}

// WithWebhookFormat sets the body's format (default FormatMediator).
func WithWebhookFormat(f WebhookFormat) WebhookOption {
	return func(w *Webhook) {
		if ValidWebhookFormat(f) {
			w.format = f
		}
	}
}

// WithWebhookLogger sets the logger.
func WithWebhookLogger(l *slog.Logger) WebhookOption {
	return func(w *Webhook) {
		if l != nil {
			w.log = l
		}
	}
}

// NewWebhook returns a webhook for url signed with secret; Run delivers.
func NewWebhook(url, secret string, opts ...WebhookOption) *Webhook {
	w := &Webhook{url: url, secret: []byte(secret), client: &http.Client{Timeout: 5 * time.Second},
		format: FormatMediator, log: slog.New(slog.DiscardHandler), queue: make(chan []byte, 256), attempts: 5, backoff: time.Second}
	for _, o := range opts {
		o(w)
	}
	return w
}

// webhookEvent is the JSON body. Arguments are not sent: the page shows
// them to signed-in approvers only.
type webhookEvent struct {
	Event      string             `json:"event"`
	ApprovalID string             `json:"approval_id"`
	URL        string             `json:"url"`
	AgentID    string             `json:"agent_id"`
	TaskID     string             `json:"task_id,omitempty"`
	Server     string             `json:"server"`
	Tool       string             `json:"tool"`
	Risk       mediator.Risk      `json:"risk,omitempty"`
	DataClass  mediator.DataClass `json:"data_class,omitempty"`
	Rule       string             `json:"rule,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Required   int                `json:"required_approvers"`
	Created    time.Time          `json:"created"`
	Expires    time.Time          `json:"expires"`
}

// Notify queues a delivery for a; it never blocks.
func (w *Webhook) Notify(a mediator.Approval, url string) {
	ev := webhookEvent{Event: "approval.pending", ApprovalID: a.ID, URL: url, AgentID: a.AgentID,
		TaskID: a.TaskID, Server: a.Server, Tool: a.Tool, Risk: a.Risk, DataClass: a.DataClass, Rule: a.Rule,
		Reason: a.Reason, Required: a.Required, Created: a.Created, Expires: a.Expires}
	var body []byte
	var err error
	switch w.format {
	case FormatSlack:
		body, err = json.Marshal(slackMessage(ev))
	case FormatTeams:
		body, err = json.Marshal(teamsMessage(ev))
	default:
		body, err = json.Marshal(ev)
	}
	if err != nil {
		w.log.Error("webhook: encode", "approval", a.ID, "err", err)
		return
	}
	select {
	case w.queue <- body:
	default:
		w.log.Warn("webhook: queue full; notification dropped", "approval", a.ID)
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-w.queue:
			w.deliver(ctx, body)
		}
	}
}

// deliver posts body, retrying failures (network errors, non-2xx) with
// exponential backoff up to the attempt limit.
func (w *Webhook) deliver(ctx context.Context, body []byte) {
	wait := w.backoff
	for attempt := 1; attempt <= w.attempts; attempt++ {
		err := w.post(ctx, body)
		if err == nil {
			w.log.Info("webhook delivered", "attempt", attempt)
			return
		}
		w.log.Warn("webhook attempt failed", "attempt", attempt, "of", w.attempts, "err", err)
		if attempt == w.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
	w.log.Error("webhook: giving up on a notification", "attempts", w.attempts)
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return errors.New("webhook request: the URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mcp-mediator-webhook")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// Not the URL: a chat webhook's URL is its secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: status %s", resp.Status)
	}
	return nil
}

// Sign returns the SignatureHeader value for a delivery.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
