package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckAdvertise(t *testing.T) {
	for _, a := range []string{"127.0.0.1:7000", "node1.example:7000", "[::1]:7000"} {
		if err := checkAdvertise(a); err != nil {
			t.Errorf("checkAdvertise(%q): %v", a, err)
		}
	}
	for _, a := range []string{"0.0.0.0:7000", "[::]:7000", ":7000", "127.0.0.1:0", "127.0.0.1", ""} {
		if err := checkAdvertise(a); err == nil {
			t.Errorf("checkAdvertise(%q) accepted an address other nodes cannot dial", a)
		}
	}
}

func TestLeaderErrorText(t *testing.T) {
	cause := errors.New("node is not the leader")
	cases := []struct {
		e    *LeaderError
		want string
	}{
		{&LeaderError{Err: ErrNotLeader, cause: cause}, "no leader known yet"},
		{&LeaderError{Err: ErrNotLeader, Leader: Member{ID: "n2", RaftAddr: "10.0.0.2:7001"}}, "API address not yet known"},
		{&LeaderError{Err: ErrLeadershipLost, Leader: Member{ID: "n2", APIAddr: "10.0.0.2:7443"}}, "leader is n2 at 10.0.0.2:7443"},
	}
	for _, c := range cases {
		if !strings.Contains(c.e.Error(), c.want) {
			t.Errorf("%q does not say %q", c.e.Error(), c.want)
		}
		if !errors.Is(c.e, c.e.Err) {
			t.Errorf("%v does not wrap its sentinel", c.e)
		}
	}
	if !errors.Is(cases[0].e, cause) {
		t.Error("LeaderError does not wrap the raft error")
	}
}
