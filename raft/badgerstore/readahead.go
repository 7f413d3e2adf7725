package badgerstore

// Badger writes its value log and its memtables' write-ahead logs through
// shared mmaps and msyncs them on every synced commit. On Linux with large
// page-cache folios (ext4 and xfs since 6.x) and a large device readahead
// (8 MiB on the reference VM), the first write fault on a hole of such a
// file "reads around" it into folios of up to 2 MiB, and msync writes back
// every dirty folio whole: each commit of a 140 KiB command wrote back
// ≈ 1.7 MB, and the tail folio was written again by the next commit (12×
// the data; 120 MB/s a node under `provbench cluster`, where each node
// wrote 21 KB of disk per 1.7 KB entry). MADV_RANDOM on those mappings
// turns the read-around off, so a fault maps one page and msync writes only
// the pages a commit touched (`BenchmarkStoreLogs` reports disk-B/op).
//
// Badger does not expose its mappings, so the store finds them in
// /proc/self/maps by path (the .vlog and .mem files under its directory)
// and advises them after Open and again every adviseEvery bytes written,
// which catches the files Badger creates as it rotates value logs and
// memtables. The advice only changes how page faults read ahead: a range
// Badger unmapped in between, or anything mapped there since, is at worst
// read ahead less.

// adviseEvery is how many bytes StoreLogs writes between two scans for new
// value-log and memtable mappings to advise. Badger rotates memtables every
// MemTableSize (64 MiB) and value logs every 1 GiB, so the pages written
// before a new file is advised are a small share.
const adviseEvery = 16 << 20
