//go:build !linux

package badgerstore

// adviseRandom is a no-op outside Linux (see readahead.go).
func adviseRandom(dir string) (int, error) { return 0, nil }
