package checksum

import "container/list"

// lru is a bounded least-recently-used map of file identities to the
// digests computed so far. It is not safe for concurrent use; Hasher.mu
// guards it.
type lru struct {
	max   int
	order *list.List // front = most recently used; values are *cacheEntry
	items map[fileKey]*list.Element
}

type cacheEntry struct {
	key     fileKey
	mask    algoMask // algorithms present in digests
	digests [nAlgos]string
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: make(map[fileKey]*list.Element)}
}

// get returns the entry for k (marking it recently used), or nil.
func (c *lru) get(k fileKey) *cacheEntry {
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// merge records the digests selected by mask for k, keeping those already
// known, and evicts the least recently used entries beyond the bound.
func (c *lru) merge(k fileKey, mask algoMask, d *[nAlgos]string) {
	e := c.get(k)
	if e == nil {
		e = &cacheEntry{key: k}
		c.items[k] = c.order.PushFront(e)
	}
	for i := range nAlgos {
		if mask&(1<<i) != 0 {
			e.digests[i] = d[i]
		}
	}
	e.mask |= mask
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries.
func (c *lru) len() int { return c.order.Len() }
