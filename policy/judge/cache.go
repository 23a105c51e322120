package judge

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/mcp-mediator/mediator/mediator"
)

// lru is a size- and age-bounded cache of opinions.
type lru struct {
	mu   sync.Mutex
	size int
	ttl  time.Duration
	ll   *list.List // of *entry, most recently used first
	m    map[[sha256.Size]byte]*list.Element
}

type entry struct {
	key     [sha256.Size]byte
	res     mediator.JudgeResult
	expires time.Time
}

func newLRU(size int, ttl time.Duration) *lru {
	return &lru{size: size, ttl: ttl, ll: list.New(), m: make(map[[sha256.Size]byte]*list.Element)}
}

// get returns the opinion stored under key unless it has expired.
func (c *lru) get(key [sha256.Size]byte, now time.Time) (mediator.JudgeResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return mediator.JudgeResult{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.m, key)
		return mediator.JudgeResult{}, false
	}
	c.ll.MoveToFront(el)
	return e.res, true
}

// put stores res under key, evicting the least recently used opinion when
// full.
func (c *lru) put(key [sha256.Size]byte, res mediator.JudgeResult, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*entry)
		e.res, e.expires = res, now.Add(c.ttl)
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&entry{key: key, res: res, expires: now.Add(c.ttl)})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry).key)
	}
}

// len returns the number of stored opinions, expired ones included.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
