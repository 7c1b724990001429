package auth

import (
	"container/list"
	"sync"
	"time"
)

// decisionCache is a bounded LRU cache of hook decisions with a time to
// live. Keys are SHA-256 digests of the request, so no password is kept.
//
// Locking: mu guards everything; no method calls out while holding it.
type decisionCache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	now   func() time.Time
	ll    *list.List // front is most recently used; values are *cacheEntry
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	result  Result
	expires time.Time
}

func newDecisionCache(size int, ttl time.Duration) *decisionCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	return &decisionCache{size: size, ttl: ttl, now: time.Now, ll: list.New(), items: make(map[[32]byte]*list.Element, size)}
}

// get returns the cached result for key, if present and not expired.
func (c *decisionCache) get(key [32]byte) (Result, bool) {
	if c == nil {
		return Deny, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return Deny, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return Deny, false
	}
	c.ll.MoveToFront(el)
	return e.result, true
}

// put stores a result, evicting the least recently used entry when full.
func (c *decisionCache) put(key [32]byte, r Result) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.now().Add(c.ttl)
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.result, e.expires = r, exp
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, result: r, expires: exp})
}

// len returns the number of entries, expired ones included.
func (c *decisionCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
