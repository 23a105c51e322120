package tools

import (
	"fmt"
	"testing"
)

// One agent session cannot push out another's pending URL elicitations.
func TestAwaitElicitationBounds(t *testing.T) {
	t.Parallel()
	c := &conn{}
	a, b := &fakePeer{id: "a"}, &fakePeer{id: "b"}
	c.awaitElicitation("b-1", b)
	for i := range 3 * maxPendingElicitations {
		c.awaitElicitation(fmt.Sprintf("a-%d", i), a)
	}
	own := 0
	for _, e := range c.elicits {
		if e.peer.SessionID() == "a" {
			own++
		}
	}
	if own != maxPendingPerSession {
		t.Fatalf("session a holds %d pending elicitations; want its cap %d", own, maxPendingPerSession)
	}
	if _, ok := c.elicits["b-1"]; !ok {
		t.Fatal("session b's pending elicitation was pushed out by session a's")
	}
	for _, id := range []string{"", string(make([]byte, 300))} {
		c.awaitElicitation(id, b)
		if _, ok := c.elicits[id]; ok {
			t.Fatalf("an id of %d bytes was kept", len(id))
		}
	}
}
