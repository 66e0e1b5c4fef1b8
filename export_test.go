package laburen

// MemoryDedupLongestKey returns the length of the longest key d holds, claimed or done.
func MemoryDedupLongestKey(d *MemoryDeduplicator) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for k := range d.claimed {
		n = max(n, len(k))
	}
	for k := range d.done {
		n = max(n, len(k))
	}
	return n
}
