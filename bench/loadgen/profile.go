package loadgen

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// ProfileWindow returns an OnWindow hook that writes a CPU profile of
// exactly the measured window (no pre-signing, no warmup) to path. Errors
// are reported on errw; a failed profile never fails the run.
func ProfileWindow(path string, errw io.Writer) func(start bool) {
	var f *os.File
	return func(start bool) {
		if !start {
			if f == nil {
				return
			}
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(errw, "provbench: CPU profile %s: %v\n", path, err)
				return
			}
			fmt.Fprintf(errw, "provbench: CPU profile of the window: %s\n", path)
			return
		}
		var err error
		if f, err = os.Create(path); err != nil {
			fmt.Fprintf(errw, "provbench: CPU profile: %v\n", err)
			f = nil
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(errw, "provbench: CPU profile: %v\n", err)
			f.Close()
			f = nil
		}
	}
}
