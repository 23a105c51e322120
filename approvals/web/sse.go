package web

import (
	"fmt"
	"net/http"
	"time"
)

// Live-queue timing.
const (
	ssePoll      = 500 * time.Millisecond
	sseHeartbeat = 15 * time.Second
)

// events streams "queue" events (Server-Sent Events) whenever any approval
// changes, in this process or another sharing the database: it follows
// the store's revision counter. The browser then fetches the rows.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	st := h.cfg.Queue.Store()
	last := int64(-1)
	poll, beat := time.NewTicker(ssePoll), time.NewTicker(sseHeartbeat)
	defer poll.Stop()
	defer beat.Stop()
	for {
		rev, err := st.LastApprovalRev(r.Context())
		if err == nil && rev != last {
			last = rev
			if _, err := fmt.Fprintf(w, "event: queue\ndata: %d\n\n", rev); err != nil {
				return
			}
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.cfg.Done:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-poll.C:
		}
	}
}
