package scanner

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/provledger/provledger/ledger"
)

// UseReferencePath makes o select the reference read and parse path
// (point reads, strict parsers) that the fast path must agree with.
func UseReferencePath(o *Options) { o.reference = true }

// DowngradeStateToJSON rewrites l's stored scanner state in state format 1
// (JSON values), as a scanner before the binary format left it.
func DowngradeStateToJSON(l *ledger.Log) error {
	db := l.DB()
	b := db.NewBatch()
	defer b.Close()
	for _, f := range []func(*pebble.DB, *pebble.Batch) error{
		downgrade[keyState](tblKey), downgrade[approval](tblApproval), downgrade[budget](tblBudget),
		downgrade[jobState](tblJob), downgrade[datasetState](tblDataset), downgrade[runState](tblRun),
		downgrade[series](tblVolume), downgrade[costSeries](tblCost),
	} {
		if err := f(db, b); err != nil {
			return err
		}
	}
	if err := b.Set(keyFormat, binary.BigEndian.AppendUint64(nil, stateFormatJSON), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

func downgrade[T any, P stateValue[T]](pfx byte) func(*pebble.DB, *pebble.Batch) error {
	return func(db *pebble.DB, b *pebble.Batch) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyPrefix, pfx}, UpperBound: []byte{keyPrefix, pfx + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			v := new(T)
			if err := decodeState[T, P](it.Value(), v); err != nil {
				return err
			}
			enc, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := b.Set(slices.Clone(it.Key()), enc, nil); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return fmt.Errorf("table %c is empty: nothing to downgrade", pfx)
		}
		return it.Error()
	}
}
