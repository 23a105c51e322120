package judge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"unicode"

	openai "github.com/sashabaranov/go-openai"
)

const (
	// maxRationaleBytes caps the rationale kept from a reply.
	maxRationaleBytes = 500
	// maxReasonBytes caps the detail in a Fallback text.
	maxReasonBytes = 200
)

// judgement is the reply the schema asks for. Pointers tell a missing field
// from a zero one.
type judgement struct {
	Score     *float64 `json:"score"`
	Rationale *string  `json:"rationale"`
}

// interpret checks a chat completion and extracts the judgement. When the
// reply is not exactly one usable judgement it returns the fallback reason
// instead.
func interpret(resp *openai.ChatCompletionResponse) (score float64, rationale, fallback string) {
	if n := len(resp.Choices); n != 1 {
		return 0, "", fmt.Sprintf("malformed reply: %d choices, want 1", n)
	}
	c := resp.Choices[0]
	if ref := clean(c.Message.Refusal, maxReasonBytes); ref != "" {
		return 0, "", "refusal: " + ref
	}
	switch c.FinishReason {
	case openai.FinishReasonContentFilter:
		return 0, "", "refusal: content filter"
	case openai.FinishReasonLength:
		return 0, "", "malformed reply: cut short at the token limit"
	case openai.FinishReasonToolCalls, openai.FinishReasonFunctionCall:
		return 0, "", "malformed reply: a tool call instead of a judgement"
	}
	if len(c.Message.ToolCalls) > 0 || c.Message.FunctionCall != nil {
		return 0, "", "malformed reply: a tool call instead of a judgement"
	}
	if c.Message.Content == "" {
		return 0, "", "malformed reply: no content"
	}
	score, rationale, err := parseContent(c.Message.Content)
	if err != nil {
		return 0, "", "malformed reply: " + clean(err.Error(), maxReasonBytes)
	}
	return score, rationale, ""
}

// parseContent decodes the message content strictly: one JSON object with
// exactly a score within 0..1 and a rationale, nothing before or after. The
// rationale comes back cleaned.
func parseContent(content string) (float64, string, error) {
	dec := json.NewDecoder(strings.NewReader(content))
	dec.DisallowUnknownFields()
	var j judgement
	if err := dec.Decode(&j); err != nil {
		return 0, "", fmt.Errorf("content is not a judgement object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, "", errors.New("content has data after the judgement object")
	}
	if j.Score == nil {
		return 0, "", errors.New("score missing")
	}
	if j.Rationale == nil {
		return 0, "", errors.New("rationale missing")
	}
	s := *j.Score
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > 1 {
		return 0, "", fmt.Errorf("score %g is not within 0..1", s)
	}
	return s, clean(*j.Rationale, maxRationaleBytes), nil
}

// clean makes model or server text safe to show and log: valid UTF-8,
// control and format characters removed, runs of white space collapsed to
// one space, trimmed, and cut to at most n bytes on a rune boundary.
func clean(s string, n int) string {
	// Look at no more than can survive; cutting may split a rune, which
	// ToValidUTF8 then drops.
	if len(s) > 4*n {
		s = s[:4*n]
	}
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out, _ := capString(b.String(), n)
	return out
}

// classify turns a request error into a fallback reason.
func classify(ctx context.Context, err error) string {
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
		netErr net.Error
		synErr *json.SyntaxError
		typErr *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, errResponseTooLarge):
		return fmt.Sprintf("error: response larger than %d bytes", MaxResponseBytes)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "error: canceled"
	case errors.As(err, &apiErr):
		if apiErr.HTTPStatusCode == 0 {
			return "error: " + clean(apiErr.Message, maxReasonBytes)
		}
		return fmt.Sprintf("error: http %d: %s", apiErr.HTTPStatusCode, clean(apiErr.Message, maxReasonBytes))
	case errors.As(err, &reqErr):
		// The body is not quoted: it may be an HTML error page.
		return fmt.Sprintf("error: http %d", reqErr.HTTPStatusCode)
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &synErr), errors.As(err, &typErr), errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed reply: " + clean(err.Error(), maxReasonBytes)
	}
	return "error: " + clean(err.Error(), maxReasonBytes)
}
