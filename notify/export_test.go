package notify

// LimitOf is the number of concurrent requests host (host[:port]) may have now, or 0 when the
// worker keeps nothing about it.
func (w *Worker) LimitOf(host string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d := w.dests[host]; d != nil {
		return d.limit
	}
	return 0
}
