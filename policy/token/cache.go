package token

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Bounds of the verified-token cache.
const (
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 4096
	// cacheTTL bounds how long a signature check is reused.
	cacheTTL = time.Minute
)

// verifiedCache remembers tokens whose signature and static claims
// (issuer, audience, passport) have been checked, so that an agent
// calling many tools with one token pays for the signature once. The time
// checks and the revocation check run on every request all the same.
// Tokens verified with a key from the JWKS URL are not cached: that key
// may be withdrawn at the next refresh, and must then stop working.
type verifiedCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cachedClaims
}

type cachedClaims struct {
	c     *Claims
	until time.Time
}

func newVerifiedCache(size int) *verifiedCache {
	if size <= 0 {
		return nil
	}
	return &verifiedCache{max: size, m: make(map[string]cachedClaims)}
}

// get returns the claims of raw if it was verified and the entry is still
// fresh at now. A nil cache holds nothing.
func (vc *verifiedCache) get(raw string, now time.Time) *Claims {
	if vc == nil {
		return nil
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	e, ok := vc.m[raw]
	if !ok {
		return nil
	}
	if now.After(e.until) {
		delete(vc.m, raw)
		return nil
	}
	return e.c
}

// put remembers raw's claims until the earlier of exp and now + cacheTTL.
// When full, it drops an arbitrary entry (map order is random).
func (vc *verifiedCache) put(raw string, c *Claims, now time.Time) {
	if vc == nil {
		return
	}
	until := now.Add(cacheTTL)
	if c.ExpiresAt != nil && c.ExpiresAt.Time.Before(until) {
		until = c.ExpiresAt.Time
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if len(vc.m) >= vc.max {
		for k := range vc.m {
			delete(vc.m, k)
			break
		}
	}
	vc.m[raw] = cachedClaims{c: c, until: until}
}

// clone returns a copy of c that shares no slice or map with it.
func (c *Claims) clone() *Claims {
	d := *c
	d.Audience = slices.Clone(c.Audience)
	d.Roles = slices.Clone(c.Roles)
	d.Attrs = maps.Clone(c.Attrs)
	return &d
}
