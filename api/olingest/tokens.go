package olingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/provledger/provledger/api/auth"
)

// ErrNoIngestTokens means a tokens file holds no principal that may send
// events (see NewTokens).
var ErrNoIngestTokens = errors.New("no ingest tokens")

// Tokens is the set of bearer tokens the endpoint accepts. It is read
// from a tokens file in api/auth's format (auth.ParseFile: one parser for
// every tokens file of the node), so the file given to provd
// --ingest-tokens may be the --auth-tokens file itself. Safe for
// concurrent use: Reload and Watch swap the set atomically, and requests
// in flight finish with the set they started with.
type Tokens struct {
	set  atomic.Pointer[tokenSet]
	path string // "" when made from principals
	// mu serializes reloads; stamp is the file as last loaded.
	mu    sync.Mutex
	stamp fileStamp
	// checked is when Refresh last looked at the file (Unix nanoseconds).
	checked atomic.Int64
}

// RefreshInterval is how often Refresh looks at the tokens file at most.
const RefreshInterval = time.Second

// Refresh reloads the tokens file if it changed (size, time or identity:
// an edit, or a new file moved into place), looking at most once per
// RefreshInterval; the handler calls it before authenticating each
// request, so an added or revoked token counts from the first request a
// second after the edit, with no goroutine to run or stop. changed says
// it tried to reload; a file that does not load leaves the tokens in
// force and is not tried again until it changes.
func (t *Tokens) Refresh() (changed bool, err error) {
	if t.path == "" {
		return false, nil
	}
	now := time.Now().UnixNano()
	last := t.checked.Load()
	if now-last < int64(RefreshInterval) || !t.checked.CompareAndSwap(last, now) {
		return false, nil
	}
	return t.reloadIfChanged()
}

type tokenSet struct {
	list []token
}

// token is a principal that may send events: its name (recorded as the
// namespace of every entry it sends), the SHA-256 of its secret, and the
// payload types it may append (empty: any).
type token struct {
	name  string
	hash  [32]byte
	types []string
}

// NewTokens keeps, of ps, the principals that hold a bearer token and may
// append to the namespace named like them — a line "<name>
// sha256:<hex>" of a tokens file is one — since the entries a token sends
// carry its name as their namespace. Other principals (readers,
// certificate identities, appenders to other namespaces) are left out.
// A principal's types= list restricts the event types it may send; the
// events are signed by the node, so its keys= list does not apply.
func NewTokens(ps []auth.Principal) (*Tokens, error) {
	set, err := newTokenSet(ps)
	if err != nil {
		return nil, err
	}
	t := &Tokens{}
	t.set.Store(set)
	return t, nil
}

func newTokenSet(ps []auth.Principal) (*tokenSet, error) {
	s := &tokenSet{}
	for i := range ps {
		p := &ps[i]
		if p.CertIdentity != "" || p.TokenHash == ([32]byte{}) || !p.MayAppendTo(p.Name) {
			continue
		}
		s.list = append(s.list, token{name: p.Name, hash: p.TokenHash, types: slices.Clone(p.PayloadTypes)})
	}
	if len(s.list) == 0 {
		return nil, fmt.Errorf("%w: no principal has a bearer token and may append to the namespace of its name; add lines \"<name> sha256:<hex of SHA-256 of the token>\"", ErrNoIngestTokens)
	}
	return s, nil
}

// LoadTokensFile reads a tokens file (auth.LoadFile) into Tokens that
// Reload and Watch re-read.
func LoadTokensFile(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// fileStamp identifies a version of a file: a change of any field means
// it was edited or replaced.
type fileStamp struct {
	info os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return false
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

// Reload re-reads the tokens file. On an error (the file is missing or
// does not parse, or holds no ingest token) the tokens in force stay.
func (t *Tokens) Reload() error {
	if t.path == "" {
		return errors.New("tokens: not read from a file; nothing to reload")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked()
}

func (t *Tokens) reloadLocked() error {
	info, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	ps, err := auth.LoadFile(t.path)
	if err != nil {
		return err
	}
	set, err := newTokenSet(ps)
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.set.Store(set)
	t.stamp = fileStamp{info: info}
	return nil
}

// reloadIfChanged reloads the file if it changed since it was last
// loaded; changed says it tried.
func (t *Tokens) reloadIfChanged() (changed bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, err := os.Stat(t.path)
	if err != nil {
		if t.stamp.info == nil {
			return false, nil // already reported
		}
		t.stamp = fileStamp{}
		return true, fmt.Errorf("tokens file: %w", err)
	}
	if t.stamp.same(fileStamp{info: info}) {
		return false, nil
	}
	if err := t.reloadLocked(); err != nil {
		// Do not retry until the file changes again.
		t.stamp = fileStamp{info: info}
		return true, err
	}
	return true, nil
}

// DefaultWatchInterval is how often Watch looks at the tokens file.
const DefaultWatchInterval = 2 * time.Second

// WatchOptions configure Watch.
type WatchOptions struct {
	// Interval is how often the file's size, time and identity are
	// checked (0: DefaultWatchInterval; negative: never, SIGHUP only).
	Interval time.Duration
	// Hangup reloads the file on SIGHUP too.
	Hangup bool
	// Logger receives a line per reload. Default slog.Default().
	Logger *slog.Logger
}

// Watch reloads the tokens file when it changes (an edit, or a new file
// moved into place) and, with Hangup, on SIGHUP, until ctx ends. A file
// that does not load is logged and the tokens in force stay.
func (t *Tokens) Watch(ctx context.Context, o WatchOptions) {
	if t.path == "" {
		return
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg = lg.With("component", "olingest", "file", t.path)
	var hup chan os.Signal
	if o.Hangup {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var tick <-chan time.Time
	if o.Interval >= 0 {
		iv := o.Interval
		if iv == 0 {
			iv = DefaultWatchInterval
		}
		tk := time.NewTicker(iv)
		defer tk.Stop()
		tick = tk.C
	}
	report := func(why string, err error) {
		if err != nil {
			lg.Error(why+": ingest tokens not reloaded; the previous tokens stay in force", "err", err)
			return
		}
		lg.Info(why+": reloaded the ingest tokens", "tokens", t.Len())
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			report("SIGHUP", t.Reload())
		case <-tick:
			if changed, err := t.reloadIfChanged(); changed {
				report("tokens file changed", err)
			}
		}
	}
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.set.Load().list) }

// Names returns the token names in file order.
func (t *Tokens) Names() []string {
	s := t.set.Load()
	out := make([]string, len(s.list))
	for i, k := range s.list {
		out[i] = k.name
	}
	return out
}

// Match returns the name of the token whose secret is secret. It hashes
// the secret once and compares the hash with every configured hash in
// constant time, so neither the timing nor the position of a match says
// anything about the secrets.
func (t *Tokens) Match(secret string) (string, bool) {
	k, ok := t.match(secret)
	return k.name, ok
}

func (t *Tokens) match(secret string) (token, bool) {
	s := t.set.Load()
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range s.list {
		if subtle.ConstantTimeCompare(h[:], s.list[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return token{}, false
	}
	return s.list[found], true
}

// mayAppend reports whether the token may send events of payload type pt.
func (k token) mayAppend(pt string) bool {
	return len(k.types) == 0 || slices.Contains(k.types, pt)
}
