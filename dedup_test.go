package laburen_test

import (
	"sync"
	"testing"
	"time"

	"github.com/laburen/laburen-go"
	"github.com/laburen/laburen-go/internal/dedupcheck"
)

// TestMemoryDeduplicatorContract runs the tests every deduplicator passes. The store is the
// process: the deduplicators opened with one lease are one MemoryDeduplicator.
func TestMemoryDeduplicatorContract(t *testing.T) {
	var mu sync.Mutex
	byTTL := map[time.Duration]*laburen.MemoryDeduplicator{}
	dedupcheck.Run(t, dedupcheck.Store{
		Open: func(_ *testing.T, ttl time.Duration) laburen.WebhookDeduplicator {
			mu.Lock()
			defer mu.Unlock()
			if byTTL[ttl] == nil {
				byTTL[ttl] = laburen.NewMemoryDeduplicator(1000, laburen.WithDedupClaimTTL(ttl))
			}
			return byTTL[ttl]
		},
		LongestKey: func(*testing.T) int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, d := range byTTL {
				n = max(n, laburen.MemoryDedupLongestKey(d))
			}
			return n
		},
	})
}
