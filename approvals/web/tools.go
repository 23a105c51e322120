package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcp-mediator/mediator/mediator"
)

// ToolChange is one upstream tool waiting for review: new, changed since
// it was pinned, or rejected; with what changed and what the scanner found.
type ToolChange struct {
	Server, Tool string
	State        mediator.PinState
	// OfferedHash is the definition a review decides on.
	OfferedHash, PinnedHash string
	Changes                 []DefinitionChange
	// Definition is the offered definition, for a new tool.
	Definition string
	Findings   []mediator.Finding
}

// DefinitionChange is one path of a definition that differs.
type DefinitionChange struct {
	Path, Kind, Before, After string
}

// ToolReviews lists and decides tool changes (cmd/mediator implements it
// over the store, the scanner's diff and the registry).
type ToolReviews interface {
	Pending(ctx context.Context) ([]ToolChange, error)
	// Review approves or rejects the definition offeredHash of server's
	// tool; a definition changed since is refused (mediator.ErrReviewStale).
	Review(ctx context.Context, server, tool, offeredHash string, approve bool, reviewer, note string) error
}

// toolsBody is the tool changes view.
type toolsBody struct {
	Changes []ToolChange
	// CanReview is true for an admin: approvers and auditors only read.
	CanReview bool
	Done      string
}

func (h *Handler) toolsPage(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Tools == nil {
		h.fail(w, r, http.StatusNotFound, "Tool pinning is not available on this server.")
		return
	}
	list, err := h.cfg.Tools.Pending(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	u := userFrom(r)
	h.render(w, http.StatusOK, "tools.html", pageData{Title: "Tool changes", User: u, Nav: "tools",
		Body: toolsBody{Changes: list, CanReview: u.Role == mediator.RoleAdmin, Done: cut(r.URL.Query().Get("done"), 64)}})
}

func (h *Handler) reviewTool(w http.ResponseWriter, r *http.Request) {
	u, f := userFrom(r), r.PostForm
	if h.cfg.Tools == nil {
		h.fail(w, r, http.StatusNotFound, "Tool pinning is not available on this server.")
		return
	}
	if u.Role != mediator.RoleAdmin {
		h.fail(w, r, http.StatusForbidden, "Only an admin may approve or reject tool changes.")
		return
	}
	approve := f.Get("decision") == "approve"
	if !approve && f.Get("decision") != "reject" {
		h.fail(w, r, http.StatusBadRequest, "Choose approve or reject.")
		return
	}
	note := strings.TrimSpace(f.Get("note"))
	if len(note) > maxReasonBytes {
		h.fail(w, r, http.StatusBadRequest, "The note is too long; shorten it.")
		return
	}
	server, tool, hash := f.Get("server"), f.Get("tool"), f.Get("hash")
	err := h.cfg.Tools.Review(r.Context(), server, tool, hash, approve, u.Name, note)
	switch {
	case errors.Is(err, mediator.ErrReviewStale):
		h.fail(w, r, http.StatusConflict, "The upstream changed this tool again since the page was loaded; reload and review what it offers now.")
		return
	case errors.Is(err, mediator.ErrPinNotFound):
		h.fail(w, r, http.StatusNotFound, "No such tool waits for review.")
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	verdict := "rejected"
	if approve {
		verdict = "approved"
	}
	h.log.Info("approvals: tool change "+verdict, "user", u.Name, "upstream", server, "tool", tool)
	http.Redirect(w, r, Prefix+"/tools?done="+url.QueryEscape(tool+" "+verdict), http.StatusSeeOther)
}
