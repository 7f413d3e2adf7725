package loadgen

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provledger/provledger/crypto/envelope"
	"github.com/provledger/provledger/crypto/keys"
)

// Limits are this machine's raw limits, measured in one run.
type Limits struct {
	// SHA256MBps is SHA-256 over 64 KiB buffers on all cores (1 MB = 10^6 bytes).
	SHA256MBps float64 `json:"sha256_mb_per_s"`
	// Ed25519VerifyPerS and ECDSAP256VerifyPerS are signature
	// verifications per second on all cores, over the DSSE PAE of a
	// MessageSize-byte payload (ECDSA includes hashing it with SHA-256).
	Ed25519VerifyPerS   float64 `json:"ed25519_verify_per_s"`
	ECDSAP256VerifyPerS float64 `json:"ecdsa_p256_verify_per_s"`
	// KeysEd25519VerifyPerS is the same Ed25519 check through
	// crypto/keys.VerifyEd25519 (curve25519-voi with crypto/ed25519's
	// semantics), the function provd verifies envelopes with.
	KeysEd25519VerifyPerS float64 `json:"keys_verify_ed25519_per_s"`
	// PebbleSyncedPerS is Pebble batches of one 1 KiB value committed
	// with pebble.Sync per second, one at a time, in a store on FsyncDir.
	PebbleSyncedPerS float64 `json:"pebble_synced_batches_per_s"`
	// FsyncPerS is 4 KiB append+fsync operations per second, one at a time,
	// on FsyncDir; FsyncMeanMs the mean time of one.
	FsyncPerS   float64 `json:"fsync_per_s"`
	FsyncMeanMs float64 `json:"fsync_mean_ms"`
	FsyncDir    string  `json:"fsync_dir"`

	// OtherCores is the CPU (in cores, averaged over the whole limits
	// run) that other processes used meanwhile: large values mean the
	// limits above are understated.
	OtherCores float64 `json:"other_cores"`

	MessageSize int `json:"message_size"`
	Goroutines  int `json:"goroutines"`
	// EachS is how long each measurement ran.
	EachS float64 `json:"each_s"`
}

// LimitsReport is the JSON of `provbench limits`.
type LimitsReport struct {
	Scenario   string       `json:"scenario"`
	Provenance Provenance   `json:"provenance"`
	Machine    Machine      `json:"machine"`
	Settings   LimitsConfig `json:"settings"`
	Limits     Limits       `json:"limits"`
}

// RunLimits measures every limit for cfg.Each each.
func RunLimits(cfg LimitsConfig) (*LimitsReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &LimitsReport{
		Scenario:   "limits",
		Provenance: ReadProvenance(time.Now()),
		Machine:    ReadMachine(),
		Settings:   cfg,
	}
	l := &r.Limits
	l.MessageSize, l.Goroutines, l.EachS, l.FsyncDir = cfg.Size, runtime.GOMAXPROCS(0), cfg.Each.Seconds(), cfg.Dir
	start, self0, busy0 := time.Now(), SelfCPU(), machineBusy()
	l.SHA256MBps = MeasureSHA256(cfg.Each)
	var err error
	if l.Ed25519VerifyPerS, err = MeasureVerify("ed25519", cfg.Size, cfg.Each); err != nil {
		return nil, err
	}
	if l.KeysEd25519VerifyPerS, err = MeasureVerify(AlgKeysEd25519, cfg.Size, cfg.Each); err != nil {
		return nil, err
	}
	if l.ECDSAP256VerifyPerS, err = MeasureVerify("ecdsa-p256", cfg.Size, cfg.Each); err != nil {
		return nil, err
	}
	if l.FsyncPerS, l.FsyncMeanMs, err = MeasureFsync(cfg.Dir, cfg.Each); err != nil {
		return nil, err
	}
	if l.PebbleSyncedPerS, err = MeasurePebbleSync(cfg.Dir, cfg.Each); err != nil {
		return nil, err
	}
	if busy1 := machineBusy(); busy0 >= 0 && busy1 >= 0 {
		l.OtherCores = max(0, (busy1-busy0-(SelfCPU()-self0)).Seconds()/time.Since(start).Seconds())
	}
	return r, nil
}

// parallel runs op on GOMAXPROCS goroutines for about d and returns the
// total operations per second.
func parallel(d time.Duration, op func()) float64 {
	workers := runtime.GOMAXPROCS(0)
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for time.Now().Before(deadline) {
				for range 8 {
					op()
				}
				n += 8
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// MeasureSHA256 returns SHA-256 MB/s (10^6 bytes) over 64 KiB buffers on
// all cores.
func MeasureSHA256(d time.Duration) float64 {
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	ops := parallel(d, func() { sha256.Sum256(buf) })
	return ops * float64(len(buf)) / 1e6
}

// AlgKeysEd25519 names, for MeasureVerify, Ed25519 verification through
// crypto/keys.VerifyEd25519 instead of crypto/ed25519.Verify.
const AlgKeysEd25519 = "keys-ed25519"

// MeasureVerify returns signature verifications per second on all cores
// for alg ("ed25519", AlgKeysEd25519 or "ecdsa-p256"), each over the DSSE
// PAE of a size-byte payload, the message a node verifies for every append.
func MeasureVerify(alg string, size int, d time.Duration) (float64, error) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	msg := envelope.PAE("application/vnd.in-toto+json", payload)
	switch alg {
	case "ed25519", AlgKeysEd25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return 0, err
		}
		sig := ed25519.Sign(priv, msg)
		verify := ed25519.Verify
		if alg == AlgKeysEd25519 {
			verify = keys.VerifyEd25519
		}
		var bad atomic.Bool
		r := parallel(d, func() {
			if !verify(pub, msg, sig) {
				bad.Store(true)
			}
		})
		if bad.Load() {
			return 0, fmt.Errorf("%s limit: a valid signature did not verify", alg)
		}
		return r, nil
	case "ecdsa-p256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return 0, err
		}
		h := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
		if err != nil {
			return 0, err
		}
		var bad atomic.Bool
		r := parallel(d, func() {
			h := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], sig) {
				bad.Store(true)
			}
		})
		if bad.Load() {
			return 0, fmt.Errorf("ecdsa-p256 limit: a valid signature did not verify")
		}
		return r, nil
	}
	return 0, fmt.Errorf("no verification limit for algorithm %q", alg)
}

// MeasureFsync appends 4 KiB and fsyncs, one at a time, in a temporary
// file in dir for about d, and returns operations per second and the mean
// time of one in milliseconds.
func MeasureFsync(dir string, d time.Duration) (perS, meanMs float64, err error) {
	f, err := os.CreateTemp(dir, "provbench-fsync-*")
	if err != nil {
		return 0, 0, fmt.Errorf("fsync limit: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		return 0, 0, err
	}
	n := 0
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, fmt.Errorf("fsync limit: write: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("fsync limit: fsync: %w", err)
		}
		n++
	}
	el := time.Since(start)
	return float64(n) / el.Seconds(), el.Seconds() * 1000 / float64(n), nil
}
