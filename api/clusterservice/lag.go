package clusterservice

import (
	"context"
	"sync"
)

// lagTracker remembers the last Raft log index each member reported, so
// that a member that stops answering is still reported behind.
type lagTracker struct {
	mu       sync.Mutex
	lastSeen map[string]uint64
}

// ReplicationLag reports, on the leader, how many Raft log entries each
// other member is behind this node's last log index, from each member's
// own Status (asked concurrently, each within PeerTimeout). A member that
// does not answer is measured by the last index it reported (0 if it
// never did), so its lag keeps growing while it is down. ok is false on a
// node that is not the leader (followers report no lag). It does network
// I/O: call it from a poller, not from a metrics scrape.
func (s *Service) ReplicationLag(ctx context.Context) (lag map[string]uint64, ok bool) {
	n := s.cfg.Node
	if !n.IsLeader() {
		return nil, false
	}
	ms, err := n.Members(ctx)
	if err != nil {
		return nil, false
	}
	last := n.Status().LastLogIndex
	type answer struct {
		id    string
		index uint64
		ok    bool
	}
	answers := make(chan answer, len(ms))
	var wg sync.WaitGroup
	for _, m := range ms {
		if m.ID == n.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := answer{id: m.ID}
			if m.APIAddr != "" {
				st, msg := s.peerStatus(ctx, m.APIAddr)
				a.index, a.ok = st.GetLastLogIndex(), msg == "" && st != nil
			}
			answers <- a
		}()
	}
	wg.Wait()
	close(answers)

	s.lag.mu.Lock()
	defer s.lag.mu.Unlock()
	if s.lag.lastSeen == nil {
		s.lag.lastSeen = map[string]uint64{}
	}
	lag = map[string]uint64{}
	current := map[string]uint64{}
	for a := range answers {
		idx := s.lag.lastSeen[a.id]
		if a.ok {
			idx = a.index
		}
		current[a.id] = idx
		if last > idx {
			lag[a.id] = last - idx
		} else {
			lag[a.id] = 0
		}
	}
	s.lag.lastSeen = current // members that left are forgotten
	return lag, true
}
