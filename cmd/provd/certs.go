package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/provledger/provledger/api/tlsreload/certgen"
)

const certsUsage = `provd certs — make the certificates of a TLS cluster (development and tests;
production clusters take theirs from their own PKI).

  provd certs [--out DIR] [--nodes node1,node2,node3] [--clients client]
              [--hosts 127.0.0.1,localhost] [--days 365] [--domain provledger.local]

In DIR it makes, unless they exist, two CAs:
  cluster-ca.crt/.key  signs the node certificates (--peer-tls-ca)
  client-ca.crt/.key   signs the client certificates (--tls-client-ca)
and then, anew on every run (a rotation: running nodes pick them up):
  NODE.crt/.key        per node: CN NODE, SANs --hosts and
                       spiffe://DOMAIN/node/NODE, server and client use
                       (--peer-tls-cert and --tls-cert)
  CLIENT.crt/.key      per client: CN CLIENT, SAN spiffe://DOMAIN/client/CLIENT,
                       client use (prov --tls-cert)
It prints the provd and prov flags, and --auth-tokens lines for them.

Flags:
`

// certName is a node or client name: it becomes a file name and a SPIFFE
// path segment.
var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// certsCmd runs "provd certs …".
func certsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provd certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "./certs", "directory of the CAs and certificates")
	nodes := fs.String("nodes", "node1,node2,node3", "comma-separated node ids to issue node certificates for (provd --node-id)")
	clients := fs.String("clients", "client", "comma-separated client names to issue client certificates for")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated IP addresses and DNS names the node certificates are valid for (the hosts of --raft-advertise and --api-advertise)")
	days := fs.Int("days", 365, "validity of new certificates, in days (a new CA: ten times that)")
	domain := fs.String("domain", "provledger.local", "SPIFFE trust domain of the URI SANs")
	fs.Usage = func() {
		fmt.Fprint(stderr, certsUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "provd certs: unexpected arguments %q\n", fs.Args())
		return 2
	}
	nodeList, err1 := splitNames("--nodes", *nodes)
	clientList, err2 := splitNames("--clients", *clients)
	hostList := splitList(*hosts)
	var err error
	switch {
	case err1 != nil:
		err = err1
	case err2 != nil:
		err = err2
	case len(nodeList) == 0 && len(clientList) == 0:
		err = errors.New("nothing to issue: give --nodes and/or --clients")
	case len(nodeList) > 0 && len(hostList) == 0:
		err = errors.New("--hosts: node certificates need at least one host")
	case *days <= 0 || *days > 36500:
		err = fmt.Errorf("--days %d: must be between 1 and 36500", *days)
	case !certName.MatchString(*domain):
		err = fmt.Errorf("--domain %q: want a DNS-like name such as provledger.local", *domain)
	}
	if err != nil {
		fmt.Fprintf(stderr, "provd certs: %v\n", err)
		return 2
	}
	if err := makeCerts(*out, nodeList, clientList, hostList, time.Duration(*days)*24*time.Hour, *domain, stdout); err != nil {
		fmt.Fprintf(stderr, "provd certs: %v\n", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func splitNames(flagName, s string) ([]string, error) {
	l := splitList(s)
	seen := map[string]bool{}
	for _, n := range l {
		if !certName.MatchString(n) || n == "cluster-ca" || n == "client-ca" {
			return nil, fmt.Errorf("%s: %q is not a usable name (1..64 of A-Z a-z 0-9 . _ -, not cluster-ca or client-ca)", flagName, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("%s: %q twice", flagName, n)
		}
		seen[n] = true
	}
	return l, nil
}

// authority loads DIR/NAME.crt/.key, or makes and writes a new CA.
func authority(dir, name, cn string, validFor time.Duration, stdout io.Writer) (*certgen.Authority, error) {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	_, errC := os.Stat(crt)
	_, errK := os.Stat(key)
	if errC == nil || errK == nil {
		a, err := certgen.LoadAuthority(crt, key)
		if err != nil {
			return nil, fmt.Errorf("existing %s (remove %s and %s to make a new CA): %w", name, crt, key, err)
		}
		fmt.Fprintf(stdout, "kept   %s (existing CA)\n", crt)
		return a, nil
	}
	a, err := certgen.NewAuthority(cn, validFor)
	if err != nil {
		return nil, err
	}
	if err := a.WriteAuthority(crt, key); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "made   %s, %s\n", crt, key)
	return a, nil
}

func makeCerts(dir string, nodes, clients, hosts []string, validFor time.Duration, domain string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	clusterCA, err := authority(dir, "cluster-ca", "provledger cluster CA", 10*validFor, stdout)
	if err != nil {
		return err
	}
	clientCA, err := authority(dir, "client-ca", "provledger client CA", 10*validFor, stdout)
	if err != nil {
		return err
	}
	var tokens []string
	issue := func(ca *certgen.Authority, name string, req certgen.Request) error {
		c, k, err := ca.Issue(req)
		if err != nil {
			return err
		}
		crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := certgen.WritePair(crt, key, c, k); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "issued %s, %s (%s)\n", crt, key, req.URIs[0])
		return nil
	}
	for _, n := range nodes {
		uri := "spiffe://" + domain + "/node/" + n
		if err := issue(clusterCA, n, certgen.Request{CommonName: n, Hosts: hosts, URIs: []string{uri}, Server: true, Client: true, ValidFor: validFor}); err != nil {
			return err
		}
		tokens = append(tokens, fmt.Sprintf("%s mtls:uri:%s roles=admin", n, uri))
	}
	for _, n := range clients {
		uri := "spiffe://" + domain + "/client/" + n
		if err := issue(clientCA, n, certgen.Request{CommonName: n, URIs: []string{uri}, Client: true, ValidFor: validFor}); err != nil {
			return err
		}
		tokens = append(tokens, fmt.Sprintf("%s mtls:uri:%s roles=appender,reader ns=*", n, uri))
	}
	d := dir
	fmt.Fprintf(stdout, `
provd flags of node N (the node certificate serves the API too):
  --tls-cert %[1]s/N.crt --tls-key %[1]s/N.key --tls-client-ca %[1]s/client-ca.crt --tls-client-cert-optional
  --peer-tls-cert %[1]s/N.crt --peer-tls-key %[1]s/N.key --peer-tls-ca %[1]s/cluster-ca.crt
prov flags of client C:
  --tls-ca %[1]s/cluster-ca.crt --tls-cert %[1]s/C.crt --tls-key %[1]s/C.key
lines for provd --auth-tokens (nodes need admin: they forward appends and joins):
`, d)
	for _, l := range tokens {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	return nil
}
