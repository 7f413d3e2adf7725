package cluster

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap them; compare with
// errors.Is. A *LeaderError (errors.As) says who leads.
var (
	// ErrNotLeader: this node is not the leader, and nothing was proposed.
	// Retry at the leader (LeaderError.Leader.APIAddr; empty while no
	// leader is known, then retry shortly).
	ErrNotLeader = errors.New("not the raft leader")
	// ErrLeadershipLost: the entries were proposed but this node lost its
	// leadership (or shut down) before they committed. They may or may not
	// be in the log: retrying is safe, since dedup returns the original
	// index of an envelope already appended.
	ErrLeadershipLost = errors.New("raft leadership lost; outcome unknown, retry")
	// ErrExists: Join of a node id or address that belongs to another node.
	ErrExists = errors.New("raft cluster member exists")
	// ErrNoMember: the node id names no member of the cluster.
	ErrNoMember = errors.New("no such raft cluster member")
)

// LeaderError is returned when the operation must go to the leader. It
// wraps ErrNotLeader or ErrLeadershipLost, and the raft error behind it.
type LeaderError struct {
	// Err is ErrNotLeader or ErrLeadershipLost.
	Err error
	// Leader is the leader as this node knows it; Leader.ID is empty if
	// none is known.
	Leader Member
	cause  error
}

// Error says what failed and who leads (or that no leader is known).
func (e *LeaderError) Error() string {
	msg := e.Err.Error()
	if e.cause != nil && e.cause.Error() != msg {
		msg += " (" + e.cause.Error() + ")"
	}
	switch {
	case e.Leader.ID == "":
		return msg + "; no leader known yet"
	case e.Leader.APIAddr == "":
		return fmt.Sprintf("%s; leader is %s (raft %s), API address not yet known", msg, e.Leader.ID, e.Leader.RaftAddr)
	}
	return fmt.Sprintf("%s; leader is %s at %s", msg, e.Leader.ID, e.Leader.APIAddr)
}

// Unwrap returns the sentinel and the underlying raft error.
func (e *LeaderError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}
