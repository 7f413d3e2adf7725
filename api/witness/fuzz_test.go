package witness

import (
	"bytes"
	"testing"
)

// FuzzParseRequest: never panics; accepted requests marshal back to the
// same bytes.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("old 0\n\nexample.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.test/log AAAAAAAA\n"))
	f.Add([]byte("old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"))
	f.Add([]byte("old 01\n\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("round trip %q -> %q", b, r.Marshal())
		}
	})
}

// FuzzAdd: whatever the body, the server answers with a defined status and
// never cosigns something without a valid log signature.
func FuzzAdd(f *testing.F) {
	l := newTestLog(f, 8, "")
	f.Add(append([]byte("old 0\n\n"), l.note(f, 8)...))
	f.Add([]byte("old 3\n\nexample.test/log\n2\nAAAA\n"))
	s := newServer(f, &MemStore{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := s.Add(b)
		switch r.Status {
		case 200, 400, 403, 404, 409, 422:
		default:
			t.Fatalf("status %d", r.Status)
		}
	})
}
