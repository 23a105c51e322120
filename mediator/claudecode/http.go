package claudecode

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// Refuser records a request refused before it could be decided.
type Refuser interface {
	RefuseToolUse(ctx context.Context, creds mediator.Credentials, u mediator.ToolUse, cause error) error
}

// Server is what Handler needs of the mediator.
type Server interface {
	Decider
	Refuser
}

// MaxTimeout bounds the ?timeout= a hook asks for.
const MaxTimeout = 10 * time.Minute

// Handler serves Claude Code's http hook (and `mediator hook claude-code
// --url`): POST the hook event, get the hook's answer. Every answer is 200
// with a JSON body, a refusal included: Claude Code lets a tool run when
// an http hook answers an error status. The request's bearer token is the
// agent's credential, as on /mcp. ?timeout=55s bounds how long the
// answer may wait for an approval; set it below the hook's own timeout.
func Handler(s Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds := mediator.HTTPCredentials(r)
		ctx := r.Context()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		refuse := func(e Event, err error) {
			err = s.RefuseToolUse(ctx, creds, mediator.ToolUse{Tool: s.AgentToolName(Client, e.ToolName), Session: e.SessionID,
				UseID: e.ToolUseID, Client: Client, Workspace: e.Cwd}, err)
			_, _ = w.Write(Answer(ctx, s, creds, e, err))
		}
		if r.Method != http.MethodPost {
			refuse(Event{HookEventName: EventPreToolUse}, fmt.Errorf("%w: %w", mediator.ErrInvalidRequest, errMethod))
			return
		}
		if err := mediator.CheckLoopbackHost(r); err != nil {
			refuse(Event{HookEventName: EventPreToolUse}, err)
			return
		}
		if t := r.URL.Query().Get("timeout"); t != "" {
			d, err := time.ParseDuration(t)
			if err != nil || d <= 0 || d > MaxTimeout {
				refuse(Event{HookEventName: EventPreToolUse}, fmt.Errorf("%w: ?timeout=%q: use a Go duration up to %s, below the hook's own timeout",
					mediator.ErrInvalidRequest, trim(t, 32), MaxTimeout))
				return
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBytes+1))
		if err != nil {
			refuse(Event{HookEventName: EventPreToolUse}, fmt.Errorf("%w: the hook event could not be read (the limit is %d bytes): %w",
				mediator.ErrInvalidRequest, MaxEventBytes, err))
			return
		}
		e, err := ParseBytes(body)
		if err != nil {
			refuse(e, err)
			return
		}
		_, _ = w.Write(Answer(ctx, s, creds, e, nil))
	})
}
