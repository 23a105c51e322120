package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-mediator/mediator/approvals"
	"github.com/mcp-mediator/mediator/mediator"
)

// maxReasonBytes caps a decision's reason (the store refuses longer).
const maxReasonBytes = 2000

// queueBody is the queue page.
type queueBody struct {
	Pending []mediator.Approval
	Now     time.Time
}

func (h *Handler) pending(r *http.Request) ([]mediator.Approval, error) {
	return h.cfg.Queue.Store().Approvals(r.Context(), mediator.ApprovalFilter{State: mediator.ApprovalPending})
}

func (h *Handler) queuePage(w http.ResponseWriter, r *http.Request) {
	list, err := h.pending(r)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "queue.html", pageData{Title: "Queue", User: userFrom(r), Nav: "queue",
		Body: queueBody{Pending: list, Now: time.Now()}})
}

// queueRows is the queue table's body, fetched by app.js on each event.
func (h *Handler) queueRows(w http.ResponseWriter, r *http.Request) {
	list, err := h.pending(r)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "rows", pageData{User: userFrom(r), Body: queueBody{Pending: list, Now: time.Now()}})
}

// detailBody is the detail page.
type detailBody struct {
	A         mediator.Approval
	CanDecide bool
	WhyNot    string
	// Blocked says why approving would run nothing (a suspended or ended
	// task): only a denial is offered.
	Blocked string
	// Later are the calls of the newest session that repeated this call
	// (Askers), read now.
	Later        []mediator.ChainRecord
	LaterSession string
	// Identical are the other pending approvals of the same call (same
	// tool, arguments and rule) the user may decide along with this one.
	Identical []mediator.Approval
	Now       time.Time
	MaxReason int
	MaxGrant  int
	// CanEdit is set when the approver may edit the arguments before
	// approving (every asked value shown in full); EditArgs prefills the
	// editor: an earlier approver's edit, else the asked arguments.
	CanEdit  bool
	EditArgs string
	MaxEdit  int
}

func (h *Handler) detailPage(w http.ResponseWriter, r *http.Request) {
	also, _ := strconv.Atoi(r.URL.Query().Get("also"))
	h.showDetail(w, r, http.StatusOK, "", flashText(r.URL.Query().Get("done"), min(max(also, 0), approvals.MaxBatch)))
}

func (h *Handler) showDetail(w http.ResponseWriter, r *http.Request, status int, errMsg, flash string) {
	id := r.PathValue("id")
	a, err := h.cfg.Queue.Store().Approval(r.Context(), id)
	if errors.Is(err, mediator.ErrUnknownApproval) {
		h.fail(w, r, http.StatusNotFound, "There is no approval with that id.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	u := userFrom(r)
	why := whyNot(u, a)
	body := detailBody{A: a, CanDecide: why == "", WhyNot: why, Now: time.Now(),
		MaxReason: maxReasonBytes, MaxGrant: approvals.MaxGrantMinutes}
	if why == "" {
		body.Blocked = h.cfg.Queue.Blocked(r.Context(), a)
		body.Identical = h.identical(r, u, a)
		body.CanEdit, body.MaxEdit = approvals.Editable(a), mediator.MaxEditedArgumentsBytes
		body.EditArgs = pretty(a.Arguments)
		if e := a.Edited(); e != nil {
			body.EditArgs = pretty(e)
		}
	}
	if n := len(a.Askers); n > 0 && h.cfg.History != nil {
		body.LaterSession = a.Askers[n-1].SessionID
		if body.Later, err = h.cfg.History(r.Context(), a.AgentID, body.LaterSession, approvals.DefaultEarlierCalls); err != nil {
			h.log.Warn("approvals: reading the repeating session's calls failed", "approval", a.ID, "err", err)
		}
	}
	h.render(w, status, "detail.html", pageData{Title: a.Tool + " · " + a.ID, User: u, Nav: "queue", Error: errMsg,
		Flash: flash, Body: body})
}

// identical is the other pending approvals of a's call that u may decide.
func (h *Handler) identical(r *http.Request, u *user, a mediator.Approval) []mediator.Approval {
	list, err := h.cfg.Queue.Identical(r.Context(), a)
	if err != nil {
		h.log.Warn("approvals: reading identical approvals failed", "approval", a.ID, "err", err)
		return nil
	}
	out := list[:0]
	for _, b := range list {
		if whyNot(u, b) == "" {
			out = append(out, b)
		}
	}
	return out
}

func flashText(done string, also int) string {
	if also > 0 {
		switch done {
		case "approved", "recorded":
			return fmt.Sprintf("Approved, with %d identical call(s). Each waiting call runs now, or when its agent repeats it "+
				"(a call that needs a second approver waits for one).", also)
		case "denied":
			return fmt.Sprintf("Denied, with %d identical call(s). Each agent receives your reason.", also)
		}
	}
	switch done {
	case "approved":
		return "Approved. The waiting call runs now, or when the agent repeats it."
	case "denied":
		return "Denied. The agent receives your reason."
	case "recorded":
		return "Your approval is recorded; a second approver must also approve."
	}
	return ""
}

// whyNot explains why u may not decide a ("" when they may).
func whyNot(u *user, a mediator.Approval) string {
	switch {
	case a.State != mediator.ApprovalPending:
		return "This approval is " + string(a.State) + "."
	case u.Role == mediator.RoleAuditor:
		return "Auditors can read approvals but not decide them."
	case a.AgentOwner != "" && mediator.SameIdentity(a.AgentOwner, u.Name):
		return "You own agent " + a.AgentID + ", so another approver must decide its calls."
	}
	for _, d := range a.Decisions {
		if mediator.SameIdentity(d.Approver, u.Name) {
			return "You already approved; a second approver must decide."
		}
	}
	return ""
}

// decide applies an approve or deny form.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	u, id, f := userFrom(r), r.PathValue("id"), r.PostForm
	approve := f.Get("decision") == "approve"
	if !approve && f.Get("decision") != "deny" {
		h.showDetail(w, r, http.StatusBadRequest, "Choose approve or deny.", "")
		return
	}
	reason := strings.TrimSpace(f.Get("reason"))
	if len(reason) > maxReasonBytes {
		h.showDetail(w, r, http.StatusBadRequest, fmt.Sprintf("The reason is longer than %d bytes; shorten it.", maxReasonBytes), "")
		return
	}
	grant, err := grantFrom(f, approve)
	if err != nil {
		h.showDetail(w, r, http.StatusBadRequest, err.Error(), "")
		return
	}
	ch := approvals.Choice{Approve: approve, Reason: reason, Grant: grant}
	if approve {
		ch.Arguments = json.RawMessage(f.Get("arguments"))
	}
	if len(ch.Arguments) > mediator.MaxEditedArgumentsBytes {
		h.showDetail(w, r, http.StatusBadRequest, fmt.Sprintf("The edited arguments are longer than %d bytes; shorten them.", mediator.MaxEditedArgumentsBytes), "")
		return
	}
	a, err := h.cfg.Queue.DecideChoice(r.Context(), id, approvals.Decider{Name: u.Name, Role: u.Role}, ch)
	if err != nil {
		h.log.Warn("approvals: decision refused", "user", u.Name, "approval", id, "err", err)
		h.showDetail(w, r, decideStatus(err), decideMessage(err), "")
		return
	}
	if a.Edited() != nil && len(f["also"]) > 0 {
		// An edit is for one call: the identical ones stay pending.
		h.showDetail(w, r, http.StatusConflict, fmt.Sprintf("This call is approved with your edited arguments; the %d identical call(s) were not decided: "+
			"an edit is for one call. Decide them on their own pages.", len(f["also"])), "")
		return
	}
	also, refused := h.decideAlso(r, u, a, f["also"], approve, reason)
	done := map[mediator.ApprovalState]string{mediator.ApprovalApproved: "approved", mediator.ApprovalDenied: "denied"}[a.State]
	if done == "" {
		done = "recorded"
	}
	if len(refused) > 0 {
		h.showDetail(w, r, http.StatusConflict, fmt.Sprintf("This call is decided, and %d identical call(s) with it; these were not: %s.",
			also, strings.Join(refused, "; ")), "")
		return
	}
	q := "?done=" + done
	if also > 0 {
		q += "&also=" + strconv.Itoa(also)
	}
	http.Redirect(w, r, Prefix+"/a/"+url.PathEscape(id)+q, http.StatusSeeOther)
}

// decideAlso decides the approvals the form checked (also) as main was
// decided. Only approvals identical to main's call are taken (an id the
// page did not offer is refused, not decided), each through Decide, so
// every refusal is checked and recorded as for a single decision.
func (h *Handler) decideAlso(r *http.Request, u *user, main mediator.Approval, also []string, approve bool, reason string) (int, []string) {
	if len(also) == 0 {
		return 0, nil
	}
	var refused []string
	if len(also) > approvals.MaxBatch {
		refused = append(refused, fmt.Sprintf("%d more than the %d one decision takes", len(also)-approvals.MaxBatch, approvals.MaxBatch))
		also = also[:approvals.MaxBatch]
	}
	same := map[string]bool{}
	list, err := h.cfg.Queue.Identical(r.Context(), main)
	if err != nil {
		return 0, []string{"the identical calls could not be read (" + err.Error() + "); decide them one by one"}
	}
	for _, b := range list {
		same[b.ID] = true
	}
	n, seen := 0, map[string]bool{main.ID: true}
	for _, id := range also {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !same[id] {
			refused = append(refused, cut(id, 40)+": not a pending call identical to this one")
			continue
		}
		if _, err := h.cfg.Queue.Decide(r.Context(), id, approvals.Decider{Name: u.Name, Role: u.Role}, approve, reason, nil); err != nil {
			h.log.Warn("approvals: batch decision refused", "user", u.Name, "approval", id, "err", err)
			refused = append(refused, id+": "+strings.TrimSuffix(decideMessage(err), "."))
			continue
		}
		n++
	}
	return n, refused
}

// grantFrom reads the optional grant fields.
func grantFrom(f url.Values, approve bool) (*approvals.GrantSpec, error) {
	mins, pat := strings.TrimSpace(f.Get("grant_minutes")), f.Get("grant_pattern")
	if !approve || (mins == "" && pat == "") {
		return nil, nil
	}
	n, err := strconv.Atoi(mins)
	if err != nil || pat == "" {
		return nil, errors.New("a grant needs both minutes and an argument pattern")
	}
	return &approvals.GrantSpec{Minutes: n, Pattern: pat}, nil
}

func decideStatus(err error) int {
	switch {
	case errors.Is(err, mediator.ErrUnknownApproval):
		return http.StatusNotFound
	case errors.Is(err, mediator.ErrApprovalDecided), errors.Is(err, mediator.ErrApprovalExpired):
		return http.StatusConflict
	case errors.Is(err, mediator.ErrApprovalForbidden):
		return http.StatusForbidden
	case errors.Is(err, mediator.ErrInvalidRequest), errors.Is(err, approvals.ErrInvalidGrant):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func decideMessage(err error) string {
	switch {
	case errors.Is(err, mediator.ErrApprovalDecided):
		return "This approval was already decided; nothing changed."
	case errors.Is(err, mediator.ErrApprovalExpired):
		return "This approval expired before your decision; nothing changed. The agent must ask again."
	case errors.Is(err, mediator.ErrInvalidRequest) && strings.Contains(err.Error(), "reason"):
		return "A denial needs a reason (at most 2000 bytes)."
	case decideStatus(err) == http.StatusInternalServerError:
		return "The decision could not be saved; try again."
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// historyBody is the history page.
type historyBody struct {
	Filter mediator.ApprovalFilter
	List   []mediator.Approval
	States []mediator.ApprovalState
}

func (h *Handler) historyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := mediator.ApprovalFilter{State: mediator.ApprovalState(q.Get("state")), AgentID: q.Get("agent"),
		Tool: q.Get("tool"), Approver: q.Get("approver"), Limit: 200}
	list, err := h.cfg.Queue.Store().Approvals(r.Context(), f)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "history.html", pageData{Title: "History", User: userFrom(r), Nav: "history",
		Body: historyBody{Filter: f, List: list, States: []mediator.ApprovalState{mediator.ApprovalPending,
			mediator.ApprovalApproved, mediator.ApprovalDenied, mediator.ApprovalExpired}}})
}

// sessionBody is a session's chain view.
type sessionBody struct {
	Agent, Session string
	Records        []mediator.ChainRecord
}

func (h *Handler) sessionPage(w http.ResponseWriter, r *http.Request) {
	agent, sess := r.URL.Query().Get("agent"), r.URL.Query().Get("session")
	if h.cfg.History == nil || (agent == "" && sess == "") {
		h.fail(w, r, http.StatusBadRequest, "Name an agent or a session.")
		return
	}
	recs, err := h.cfg.History(r.Context(), agent, sess, 500)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "session.html", pageData{Title: "Session chain", User: userFrom(r), Nav: "history",
		Body: sessionBody{Agent: agent, Session: sess, Records: recs}})
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("approvals: page failed", "path", r.URL.Path, "err", err)
	h.fail(w, r, http.StatusInternalServerError, "The approval store could not be read; try again.")
}
