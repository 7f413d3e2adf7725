package clusterservice

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Limits of the membership fields (what raft/fsm's member records hold,
// and what an operator can type).
const (
	// MaxNodeIDLen is the longest node id.
	MaxNodeIDLen = 128
	// MaxAddressLen is the longest Raft or API address.
	MaxAddressLen = 1024
)

// ErrInvalidMember is wrapped by CheckNodeID and CheckAddress: the field is
// malformed, whatever the cluster holds.
var ErrInvalidMember = errors.New("invalid cluster member")

// CheckNodeID checks the syntax of a node id (provd --node-id): 1 to
// MaxNodeIDLen bytes of ASCII letters, digits, '.', '_' and '-', starting
// with a letter or digit. The error says what to fix.
func CheckNodeID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: node id is empty", ErrInvalidMember)
	case len(id) > MaxNodeIDLen:
		return fmt.Errorf("%w: node id is %d bytes; the limit is %d", ErrInvalidMember, len(id), MaxNodeIDLen)
	case !isAlnum(id[0]):
		return fmt.Errorf("%w: node id %q must start with a letter or digit", ErrInvalidMember, id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w: node id %q: byte %d (%q) is not a letter, digit, '.', '_' or '-'", ErrInvalidMember, id, i, c)
		}
	}
	return nil
}

// CheckAddress checks that addr is an address other nodes can dial:
// HOST:PORT with a port from 1 to 65535 and a host that is an IP address
// other than the unspecified one (0.0.0.0, ::) or a DNS name. field names
// the address in the error (e.g. "raft_address").
func CheckAddress(field, addr string) error {
	if addr == "" {
		return fmt.Errorf("%w: %s is empty; give HOST:PORT", ErrInvalidMember, field)
	}
	if len(addr) > MaxAddressLen {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d", ErrInvalidMember, field, len(addr), MaxAddressLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not HOST:PORT (%v)", ErrInvalidMember, field, addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || port[0] == '0' {
		return fmt.Errorf("%w: %s %q: port %q must be a number from 1 to 65535", ErrInvalidMember, field, addr, port)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return fmt.Errorf("%w: %s %q: %s is not an address another node can dial; give the node's own IP or name", ErrInvalidMember, field, addr, host)
		}
		return nil
	}
	if err := checkHostname(host); err != nil {
		return fmt.Errorf("%w: %s %q: %v", ErrInvalidMember, field, addr, err)
	}
	return nil
}

// checkHostname accepts DNS names (RFC 1123 labels; '_' is tolerated, as
// container and service names use it).
func checkHostname(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return errors.New("the host is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name is %d bytes; DNS allows 253", len(h))
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q: each dot-separated label must be 1 to 63 bytes", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: a label may not start or end with '-'", h)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return fmt.Errorf("host %q is neither an IP address nor a DNS name (byte %q)", h, c)
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
