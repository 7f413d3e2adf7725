package answer

import (
	"go/build"
	"strings"
	"testing"
)

// The CLI verifies answers without a store: this package, and the payload
// parser it uses, must not import the ledger, the index or the server.
func TestImportsNoStore(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":           {"github.com/provledger/provledger/crypto/", "github.com/provledger/provledger/query/payload", "golang.org/x/mod/sumdb/note"},
		"../payload":  {"github.com/provledger/provledger/query/jsonscan"},
		"../jsonscan": {},
	} {
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(imp, a)
			}
			if !ok {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}
