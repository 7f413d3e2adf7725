package scanner

// The hourly checks (runs past their window or retention, stale datasets)
// pop what falls due from deadline queues instead of visiting every run
// and dataset each hour. A queue may hold outdated deadlines of a key
// (each change pushes the new one); a popped key is judged on its
// current state, exactly as a visit of every key would, so the findings
// are the same. The queues are not stored: load rebuilds them from the
// state.

// deadline is a key of a state table due at a time (integration time, ms).
type deadline struct {
	at  int64
	key string
}

// deadlineQueue is a min-heap of deadlines (container/heap's algorithm,
// without its interface calls and the boxing of each deadline).
type deadlineQueue []deadline

// add queues key at at.
func (q *deadlineQueue) add(at int64, key string) {
	*q = append(*q, deadline{at, key})
	h := *q
	j := len(h) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !(h[j].at < h[i].at) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

// pop removes and returns the earliest deadline (q must not be empty).
func (q *deadlineQueue) pop() deadline {
	h := *q
	n := len(h) - 1
	h[0], h[n] = h[n], h[0]
	i := 0
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && h[j2].at < h[j].at {
			j = j2
		}
		if !(h[j].at < h[i].at) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
	d := h[n]
	h[n] = deadline{}
	*q = h[:n]
	return d
}

// popDue pops every deadline before now, earliest first, calling f with
// its key.
func (q *deadlineQueue) popDue(now int64, f func(key string)) {
	for len(*q) > 0 && (*q)[0].at < now {
		f(q.pop().key)
	}
}

// runDeadline is when run rs is next judged by checkRuns: its retention
// ends (finished, or events without a START), or its window (started).
func (s *Scanner) runDeadline(rs *runState) int64 {
	window := s.opts.Lineage.RunWindow.Milliseconds()
	keep := runRetention.Milliseconds()
	switch {
	case rs.Done:
		return rs.DoneAt + keep
	case rs.Started:
		return rs.StartedAt + window
	default:
		return rs.MaxEvent + keep + window
	}
}

// queueRun queues the deadline of run id after a change to it.
func (s *Scanner) queueRun(id string) {
	if s.opts.Lineage.Disabled {
		return // checkRuns does not run: nothing pops the queue
	}
	if rs := s.runs.peek(id); rs != nil {
		s.runDue.add(s.runDeadline(rs), id)
	}
}

// queueDatasetLimit marks dataset k's freshness limit for computing (at
// the next hourly check), after an update or a change of its interval.
func (s *Scanner) queueDatasetLimit(k string, ds *datasetState) {
	ds.limitOK = false
	if !s.opts.Freshness.Disabled {
		s.limitPending = append(s.limitPending, k)
	}
}

// rebuildDeadlines queues every run and dataset of the state (after
// load, or a change of the options the deadlines depend on).
func (s *Scanner) rebuildDeadlines() {
	s.runDue, s.staleDue, s.limitPending = s.runDue[:0], s.staleDue[:0], s.limitPending[:0]
	s.runs.each(func(id string, _ *runState) { s.queueRun(id) })
	s.datasets.each(s.queueDatasetLimit)
}
