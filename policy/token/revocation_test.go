package token

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-mediator/mediator/mediator"
)

// A revocation made by another process (written straight to the shared
// store) is honoured after the next poll.
func TestRevocationFromAnotherProcess(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	st := &memStore{}
	if err := st.Revoke(t.Context(), mediator.Revocation{JTI: "old", At: t0}); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, key, WithRevocationStore(st, 10*time.Millisecond))
	http := func(c jwt.MapClaims) mediator.Credentials {
		return mediator.Credentials{Transport: "http", Bearer: sign(t, jwt.SigningMethodEdDSA, key.priv, key.KID(), c)}
	}
	_, err := v.Authenticate(t.Context(), http(with(claimsAt(t0), "jti", "old")))
	checkRefused(t, nil, err, ErrRevoked, `token id 'old'`, "")

	cred := http(claimsAt(t0))
	if _, err := v.Authenticate(t.Context(), cred); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := st.Revoke(t.Context(), mediator.Revocation{TaskID: "task-1", At: t0, Reason: "task ended"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = v.Authenticate(t.Context(), cred)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkRefused(t, nil, err, ErrRevoked, `task 'task-1' revoked at 2026-11-22T10:00:00Z: 'task ended'`, cred.Bearer)
}

// A local Revoke is stored and takes effect at once, before any poll.
func TestRevokeLocal(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	st := &memStore{}
	v := newVerifier(t, key, WithRevocationStore(st, time.Hour))
	tok, err := v.Mint(ClaimsFor(agentFixture()), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Revoke(t.Context(), mediator.Revocation{JTI: c.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(t.Context(), tok)
	checkRefused(t, nil, err, ErrRevoked, "token revoked", tok)
	if got, _ := st.RevocationsSince(t.Context(), 0); len(got) != 1 || got[0].JTI != c.ID {
		t.Fatalf("store holds %+v; want the revocation persisted", got)
	}
	for _, bad := range []mediator.Revocation{{}, {JTI: "a", AgentID: "b"}} {
		if err := v.Revoke(t.Context(), bad); !errors.Is(err, ErrInvalidRevocation) {
			t.Errorf("Revoke(%+v) = %v; want ErrInvalidRevocation", bad, err)
		}
	}
	st.fail.Store(true)
	if err := v.Revoke(t.Context(), mediator.Revocation{JTI: "x"}); err == nil {
		t.Error("Revoke succeeded although the store failed")
	}
}

// Revoking an agent or a task withdraws the tokens issued until then;
// tokens minted afterwards work.
func TestRevokeAgentThenReissue(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	v := newVerifier(t, testKey(t), WithClock(clk.now))
	for _, r := range []mediator.Revocation{{AgentID: "billing-bot"}, {TaskID: "task-42"}} {
		clk.set(t0)
		before, err := v.Mint(ClaimsFor(agentFixture()), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		clk.advance(2 * time.Second)
		if err := v.Revoke(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(t.Context(), before)
		checkRefused(t, nil, err, ErrRevoked, "revoked", before)
		clk.advance(time.Second)
		after, err := v.Mint(ClaimsFor(agentFixture()), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(t.Context(), after); err != nil {
			t.Fatalf("a token minted after revoking %+v is refused: %v", r, err)
		}
		clk.set(t0.Add(time.Hour)) // the next round revokes later
	}
}

// When the store cannot be read for longer than DefaultMaxStale, tokens
// are refused: fail closed on a revocation list that cannot be trusted.
func TestRevocationsStale(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	st := &memStore{}
	v := newVerifier(t, testKey(t), WithClock(clk.now), WithRevocationStore(st, 5*time.Millisecond))
	tok, err := v.Mint(ClaimsFor(agentFixture()), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	clk.advance(DefaultMaxStale - time.Second)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("within the staleness bound: %v", err)
	}
	clk.advance(2 * time.Second)
	_, err = v.Verify(t.Context(), tok)
	checkRefused(t, nil, err, ErrRevocationsStale, "revocation list not refreshed for 31s", tok)
	st.fail.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err = v.Verify(t.Context(), tok); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("still refused after the store came back: %v", err)
}

func TestNewFailsWhenRevocationsCannotLoad(t *testing.T) {
	t.Parallel()
	st := &memStore{}
	st.fail.Store(true)
	_, err := New(t.Context(), testKey(t), WithRevocationStore(st, 0))
	if err == nil || !strings.Contains(err.Error(), "load revocations") {
		t.Fatalf("New = %v; want a failure to load revocations", err)
	}
}

// Close stops the poll; the verifier still answers from memory.
func TestCloseStopsPoll(t *testing.T) {
	t.Parallel()
	st := &memStore{}
	v, err := New(context.Background(), testKey(t), WithRevocationStore(st, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = v.Close(); _ = v.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}
