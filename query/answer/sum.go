package answer

import (
	"math/big"

	"github.com/provledger/provledger/query/payload"
)

type bigSum struct{ r *big.Rat }

func newBigSum() *bigSum { return &bigSum{r: new(big.Rat)} }

func (s *bigSum) add(d payload.Decimal) { s.r.Add(s.r, d.Rat()) }

func (s *bigSum) format(scale int) payload.Decimal { return payload.FormatRat(s.r, scale) }
