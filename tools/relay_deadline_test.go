package tools

import (
	"context"
	"testing"
	"time"
)

// A relayed request outlives the transport's deadline but not its
// cancellation, nor its connection.
func TestWithoutTransportDeadline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		end      func(cancelParent, endConn context.CancelFunc)
		wantDone bool
	}{
		{"the transport's deadline passes", func(context.CancelFunc, context.CancelFunc) {}, false},
		{"the transport cancels", func(cancelParent, _ context.CancelFunc) { cancelParent() }, true},
		{"the connection ends", func(_, endConn context.CancelFunc) { endConn() }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type key struct{}
			parent, cancelParent := context.WithTimeout(context.WithValue(context.Background(), key{}, "v"), 20*time.Millisecond)
			defer cancelParent()
			conn, endConn := context.WithCancel(context.Background())
			defer endConn()
			ctx, stop := withoutTransportDeadline(parent, conn)
			defer stop()
			if ctx.Value(key{}) != "v" {
				t.Fatal("the request's values were lost")
			}
			if _, ok := ctx.Deadline(); ok {
				t.Fatal("the transport's deadline was kept")
			}
			tc.end(cancelParent, endConn)
			<-parent.Done()
			time.Sleep(20 * time.Millisecond)
			if done := ctx.Err() != nil; done != tc.wantDone {
				t.Fatalf("request ended: %v; want %v", done, tc.wantDone)
			}
		})
	}
}
