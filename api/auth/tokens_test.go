package auth

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseTestdataFile(t *testing.T) {
	ps, err := LoadFile("testdata/tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Principal{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	for _, tc := range []struct {
		name  string
		roles []Role
		ns    []string
	}{
		{"team-a", []Role{RoleAppender}, []string{"team-a"}},
		{"team-b", []Role{RoleAppender}, []string{"team-b", "team-b/*"}},
		{"dashboards", []Role{RoleReader}, nil},
		{"auditor", []Role{RoleAuditor}, nil},
		{"ops", []Role{RoleAdmin}, []string{"ops"}},
		{"ci", []Role{RoleAppender, RoleReader}, []string{"ci"}},
	} {
		p, ok := byName[tc.name]
		if !ok {
			t.Errorf("%s missing", tc.name)
			continue
		}
		if !slices.Equal(p.Roles, tc.roles) || !slices.Equal(p.Namespaces, tc.ns) {
			t.Errorf("%s: roles %v ns %v; want %v %v", tc.name, p.Roles, p.Namespaces, tc.roles, tc.ns)
		}
		if tc.name != "ci" && HashToken("secret-"+tc.name) != "sha256:"+hexOf(p.TokenHash) {
			t.Errorf("%s: hash does not match secret-%s", tc.name, tc.name)
		}
	}
	if ci := byName["ci"]; ci.CertIdentity != "uri:spiffe://prod.example/ci" || len(ci.Keys) != 1 || !slices.Equal(ci.PayloadTypes, []string{"application/vnd.in-toto+json"}) {
		t.Errorf("ci: %+v", ci)
	}
}

func hexOf(b [32]byte) string {
	return strings.TrimPrefix(HashToken(""), "sha256:")[:0] + hexString(b[:])
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestParseFileErrors(t *testing.T) {
	h := "sha256:" + strings.Repeat("ab", 32)
	h2 := "sha256:" + strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name, file string
		is         error
		msg        string
	}{
		{"empty", "# nothing\n\n", ErrEmpty, "no principals"},
		{"one field", "alice\n", ErrSyntax, "line 1"},
		{"plain token", "alice hunter2\n", ErrSyntax, "never the token itself"},
		{"uppercase hex", "alice sha256:" + strings.Repeat("AB", 32) + "\n", ErrSyntax, "lowercase"},
		{"short hash", "alice sha256:abcd\n", ErrSyntax, "64 lowercase"},
		{"bad name", "al ice" + "\n", ErrSyntax, "line 1"},
		{"name chars", "al!ce " + h + "\n", ErrSyntax, "not one of"},
		{"unknown role", "alice " + h + " roles=root\n", ErrSyntax, "unknown role"},
		{"unknown field", "alice " + h + " role=admin\n", ErrSyntax, "unknown field"},
		{"not key=value", "alice " + h + " admin\n", ErrSyntax, "key=value"},
		{"field twice", "alice " + h + " ns=a ns=b\n", ErrSyntax, "twice"},
		{"star inside", "alice " + h + " ns=a*b\n", ErrSyntax, "'*'"},
		{"bad key id", "alice " + h + " keys=zz\n", ErrSyntax, "keys="},
		{"ns without appender", "alice " + h + " roles=reader ns=a\n", ErrSyntax, "roles=appender"},
		{"bad mtls", "alice mtls:host\n", ErrSyntax, "mtls:uri"},
		{"dup name", "alice " + h + "\nalice " + h2 + "\n", ErrDuplicate, "line 2"},
		{"dup token", "alice " + h + "\nbob " + h + "\n", ErrDuplicate, "line 2"},
		{"dup cert", "alice mtls:cn:x\nbob mtls:cn:x\n", ErrDuplicate, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.file))
			if err == nil {
				t.Fatal("parsed")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q; want %v containing %q", err, tc.is, tc.msg)
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	if b, err := os.ReadFile("testdata/tokens.txt"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := ParseFile(b)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrEmpty) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, p := range ps {
			if checkName(p.Name) != nil || names[p.Name] || len(p.Roles) == 0 {
				t.Fatalf("bad principal %+v", p)
			}
			names[p.Name] = true
			if p.Has(RoleAppender) && len(p.Namespaces) == 0 {
				t.Fatalf("appender without namespaces: %+v", p)
			}
		}
		if _, err := New(Config{Principals: ps, Logger: quietLogger()}); err != nil {
			t.Fatal(err)
		}
	})
}
