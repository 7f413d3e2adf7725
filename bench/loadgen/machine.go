package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	NProc         int    `json:"nproc"`
	GOMAXPROCS    int    `json:"gomaxprocs"`
	CPUModel      string `json:"cpu_model"`
	MemTotalBytes uint64 `json:"mem_total_bytes"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	Kernel        string `json:"kernel,omitempty"`
	// Nice is the load generator's scheduling niceness (a spawned node
	// inherits it); below 0 it was given priority over other processes.
	Nice int `json:"nice"`
}

// Provenance says which code produced a result.
type Provenance struct {
	GoVersion string `json:"go_version"`
	GitCommit string `json:"git_commit,omitempty"`
	// GitDirty is true when tracked files differed from the commit.
	GitDirty  bool   `json:"git_dirty,omitempty"`
	Timestamp string `json:"timestamp"`
}

// ReadMachine collects the machine description from the runtime and /proc.
func ReadMachine() Machine {
	m := Machine{
		NProc:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) >= 1 {
					if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
						m.MemTotalBytes = kb * 1024
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		m.Nice, _ = parseProcStatNice(b)
	}
	return m
}

// ReadProvenance returns the Go version, the git commit of the working
// directory (when git and a repository are there) and the time now.
func ReadProvenance(now time.Time) Provenance {
	p := Provenance{GoVersion: runtime.Version(), Timestamp: now.UTC().Format(time.RFC3339)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		p.GitCommit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
			p.GitDirty = len(bytes.TrimSpace(st)) > 0
		}
	}
	return p
}

// SelfCPU is the CPU time (user + system) this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// mainstream Linux build (it is fixed by the kernel ABI, not by CONFIG_HZ).
const clockTicks = 100

// ProcCPU is the CPU time (user + system) of process pid so far, from
// /proc/<pid>/stat (10 ms resolution).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(b)
}

// parseProcStatNice returns field 19 (nice) of /proc/<pid>/stat.
func parseProcStatNice(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	rest := strings.Fields(string(b[i+1:]))
	if len(rest) < 17 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 17", len(rest))
	}
	return strconv.Atoi(rest[16])
}

func parseProcStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// split after the last ')'. Then field 3 (state) is rest[0], utime
	// (field 14) rest[11] and stime (field 15) rest[12].
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	rest := strings.Fields(string(b[i+1:]))
	if len(rest) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(rest))
	}
	ut, err1 := strconv.ParseUint(rest[11], 10, 64)
	st, err2 := strconv.ParseUint(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: bad utime %q or stime %q", rest[11], rest[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// MachineBusy is the CPU time all processes have used so far (user, nice,
// system, irq, softirq and steal from the first line of /proc/stat), so a
// run can tell how much CPU something other than itself and its node took.
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatBusy(b)
}

func parseProcStatBusy(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d: %w", i, err)
		}
		busy += v
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}
