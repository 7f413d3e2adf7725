package query_test

import (
	"time"

	"github.com/provledger/provledger/crypto/record"
)

func recordUnmarshal(raw []byte) (time.Time, error) {
	r, err := record.Unmarshal(raw)
	return r.IntegratedTime, err
}
