package httpapi_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provledger/provledger/api/httpapi"
	"github.com/provledger/provledger/api/internal/apitest"
	"github.com/provledger/provledger/crypto/checkpoint"
	"github.com/provledger/provledger/crypto/record"
)

func get(t testing.TB, method, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestEndpoints(t *testing.T) {
	for _, prefix := range []string{"", "/log"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			env := apitest.Start(t, apitest.Options{HTTPPrefix: prefix})
			env.Fill(t, 0, 300, 100)
			e, err := env.Log.Record(5)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := record.Unmarshal(e)
			if err != nil {
				t.Fatal(err)
			}
			digest := hex.EncodeToString(rec.EnvelopeDigest[:])
			for _, tc := range []struct {
				method, path string
				code         int
				ctype, cache string
				body         string // substring
			}{
				{"GET", "/checkpoint", 200, "text/plain; charset=utf-8", "no-store", apitest.Origin + "\n300\n"},
				{"HEAD", "/checkpoint", 200, "text/plain; charset=utf-8", "no-store", ""},
				{"GET", "/healthz", 200, "text/plain; charset=utf-8", "no-store", "ok"},
				{"GET", "/tile/0/000", 200, "application/octet-stream", httpapi.CacheImmutable, ""},
				{"GET", "/tile/0/001.p/44", 200, "application/octet-stream", httpapi.CachePartial, ""},
				{"GET", "/tile/0/001.p/45", 404, "text/plain; charset=utf-8", "no-store", "fetch /checkpoint"},
				{"GET", "/tile/0/001", 404, "text/plain; charset=utf-8", "no-store", "not available"},
				{"GET", "/tile/1/000.p/1", 200, "application/octet-stream", httpapi.CachePartial, ""},
				{"GET", "/tile/entries/000", 200, "application/octet-stream", httpapi.CacheImmutable, ""},
				{"GET", "/tile/entries/001.p/44", 200, "application/octet-stream", httpapi.CachePartial, ""},
				{"GET", "/tile/entries/x001/000", 404, "text/plain; charset=utf-8", "no-store", ""},
				{"GET", "/tile/0/1", 400, "text/plain; charset=utf-8", "no-store", "not 3 digits"},
				{"GET", "/tile/0/000.p/256", 400, "text/plain; charset=utf-8", "no-store", "partial width"},
				{"GET", "/tile/9/000", 400, "text/plain; charset=utf-8", "no-store", "level"},
				{"GET", "/envelope/sha256/" + digest, 200, "application/json", httpapi.CacheImmutable, `"payloadType"`},
				{"GET", "/envelope/sha256/" + strings.Repeat("0", 64), 404, "text/plain; charset=utf-8", "no-store", ""},
				{"GET", "/envelope/sha256/" + strings.ToUpper(digest), 400, "text/plain; charset=utf-8", "no-store", "lowercase hex"},
				{"GET", "/envelope/sha512/00", 400, "text/plain; charset=utf-8", "no-store", "envelope/sha256/"},
				{"GET", "/nope", 404, "text/plain; charset=utf-8", "no-store", "no such resource"},
				{"POST", "/checkpoint", 405, "text/plain; charset=utf-8", "no-store", "use GET or HEAD"},
				{"DELETE", "/tile/0/000", 405, "text/plain; charset=utf-8", "no-store", ""},
			} {
				code, h, body := get(t, tc.method, env.HTTPURL+tc.path)
				if code != tc.code || h.Get("Content-Type") != tc.ctype || h.Get("Cache-Control") != tc.cache || !strings.Contains(string(body), tc.body) {
					t.Errorf("%s %s: %d %q %q %q; want %d %q %q containing %q", tc.method, tc.path, code, h.Get("Content-Type"), h.Get("Cache-Control"), body, tc.code, tc.ctype, tc.cache, tc.body)
				}
				if tc.method == "HEAD" && (len(body) != 0 || h.Get("Content-Length") == "0") {
					t.Errorf("HEAD %s: body %d bytes, Content-Length %s", tc.path, len(body), h.Get("Content-Length"))
				}
			}
			// Sizes and content of tiles.
			_, _, full := get(t, "GET", env.HTTPURL+"/tile/0/000")
			_, _, part := get(t, "GET", env.HTTPURL+"/tile/0/001.p/44")
			if len(full) != 256*32 || len(part) != 44*32 {
				t.Fatalf("tile sizes %d, %d", len(full), len(part))
			}
			if !bytes.Equal(full[5*32:6*32], tlogHash(e)) {
				t.Fatal("tile 0/000 position 5 is not the leaf hash of record 5")
			}
			_, _, bundle := get(t, "GET", env.HTTPURL+"/tile/entries/000")
			recs := splitBundle(t, bundle)
			if len(recs) != 256 || !bytes.Equal(recs[5], e) {
				t.Fatalf("entry bundle: %d records", len(recs))
			}
			_, _, envJSON := get(t, "GET", env.HTTPURL+"/envelope/sha256/"+digest)
			if sha256.Sum256(envJSON) != rec.EnvelopeDigest {
				t.Fatal("envelope does not hash to its digest")
			}
			if prefix != "" {
				if code, _, _ := get(t, "GET", strings.TrimSuffix(env.HTTPURL, prefix)+"/checkpoint"); code != 404 {
					t.Fatalf("unprefixed path served: %d", code)
				}
			}
		})
	}
}

func tlogHash(rec []byte) []byte { h := tlog.RecordHash(rec); return h[:] }

func splitBundle(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatal("truncated entry bundle")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			t.Fatal("truncated entry bundle")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// httpTiles is a tlog.TileReader over the HTTP API alone: it maps tlog's
// tile paths (tile/8/L/N[.p/W], tile/8/data/N) onto C2SP ones.
type httpTiles struct {
	t    testing.TB
	base string
}

func (h httpTiles) Height() int { return 8 }

func c2spPath(tlogPath string) string {
	p := strings.TrimPrefix(tlogPath, "tile/8/")
	p = strings.Replace(p, "data/", "entries/", 1)
	return "tile/" + p
}

func (h httpTiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		code, _, b := get(h.t, "GET", h.base+"/"+c2spPath(t.Path()))
		if code != 200 {
			return nil, fmt.Errorf("%s: HTTP %d: %s", t.Path(), code, b)
		}
		out[i] = b
	}
	return out, nil
}

func (httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// fetchTree reads and verifies the checkpoint over HTTP.
func fetchTree(t testing.TB, base string) tlog.Tree {
	t.Helper()
	vkey, err := checkpoint.VerifierKey(apitest.Origin, apitest.LogKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	_, _, raw := get(t, "GET", base+"/checkpoint")
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint signature: %v\n%s", err, raw)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != apitest.Origin {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("root %q", lines[2])
	}
	return tlog.Tree{N: size, Hash: tlog.Hash(root)}
}

// readRecord reads record n from its entry bundle.
func readRecord(t testing.TB, base string, tree tlog.Tree, n int64) []byte {
	t.Helper()
	tile := tlog.TileForIndex(8, tlog.StoredHashIndex(0, n))
	tile.L = -1
	tile.W = int(min(tree.N-tile.N*256, 256))
	data, err := httpTiles{t, base}.ReadTiles([]tlog.Tile{tile})
	if err != nil {
		t.Fatal(err)
	}
	recs := splitBundle(t, data[0])
	if len(recs) != tile.W {
		t.Fatalf("bundle %s has %d records, want %d", tile.Path(), len(recs), tile.W)
	}
	return recs[n-tile.N*256]
}

// TestTlogInterop mirrors the log the way a golang.org/x/mod/sumdb/tlog
// client would, through the HTTP endpoints alone.
func TestTlogInterop(t *testing.T) {
	env := apitest.Start(t, apitest.Options{})
	env.Fill(t, 0, 300, 100)
	old := fetchTree(t, env.HTTPURL)
	env.Fill(t, 300, 450, 90)
	tree := fetchTree(t, env.HTTPURL)
	if old.N != 300 || tree.N != 750 {
		t.Fatalf("tree sizes %d, %d", old.N, tree.N)
	}
	hr := tlog.TileHashReader(tree, httpTiles{t, env.HTTPURL})
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil || th != tree.Hash {
		t.Fatalf("TreeHash from tiles: %v, %v (checkpoint %v)", th, err, tree.Hash)
	}
	for _, n := range []int64{0, 1, 255, 256, 299, 511, 512, 700, 749} {
		p, err := tlog.ProveRecord(tree.N, n, hr)
		if err != nil {
			t.Fatalf("ProveRecord %d: %v", n, err)
		}
		rec := readRecord(t, env.HTTPURL, tree, n)
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, n, tlog.RecordHash(rec)); err != nil {
			t.Fatalf("CheckRecord %d: %v", n, err)
		}
	}
	p, err := tlog.ProveTree(tree.N, old.N, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		t.Fatalf("CheckTree %d → %d: %v", old.N, tree.N, err)
	}
}

// FuzzHandler feeds garbage paths and methods to the handler: it must never
// panic and never answer 5xx.
func FuzzHandler(f *testing.F) {
	env := apitest.Start(f, apitest.Options{})
	env.Fill(f, 0, 260, 100)
	h := httpapi.New(env.Log, httpapi.Options{Prefix: "/log"})
	for _, s := range []string{"/log/checkpoint", "/log/tile/0/000", "/log/tile/0/001.p/4", "/log/tile/entries/x001/x002/003.p/255", "/log/envelope/sha256/00", "/log/tile/1/000.p/1", "/log/tile/../../etc", "/log//tile/0/000", "/logx"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, w.Code, w.Body)
		}
	})
}
