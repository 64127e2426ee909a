package domain

import "testing"

// A state pinned in the cache (it holds events the store has ordered but
// may not show yet) is never evicted: reading the stream again would lose
// them. Once unpinned, it is evicted as any other.
func TestCacheKeepsPinnedStates(t *testing.T) {
	c := newLRU(1)
	pinned := &entry{stream: "budget-a"}
	c.put("budget-a", pinned)
	c.pin("budget-a", pinned)
	c.put("budget-b", &entry{stream: "budget-b"})
	c.put("budget-c", &entry{stream: "budget-c"})
	if e, ok := c.get("budget-a"); !ok || e != pinned {
		t.Fatal("a pinned state was evicted")
	}
	c.unpin("budget-a", pinned)
	c.put("budget-d", &entry{stream: "budget-d"})
	if _, ok := c.get("budget-a"); ok {
		t.Fatal("an unpinned state stays beyond the cache's size")
	}
}
