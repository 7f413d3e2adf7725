package scanner

import (
	"strings"

	"github.com/provledger/provledger/query/payload"
)

// parse decodes a payload of type typ with the lean decoder: OpenLineage
// run events and FOCUS cost rows. Any other type, and anything the lean
// decoder leaves to the strict parser, returns errLean.
func (l *leanDecoder) parse(typ string, b []byte) (*payload.Parsed, error) {
	switch typ {
	case payload.TypeOpenLineage:
		e, err := l.runEvent(b)
		if err != nil {
			return nil, err
		}
		return &payload.Parsed{Event: e}, nil
	case payload.TypeCost:
		rows, err := l.cost(b)
		if err != nil {
			return nil, err
		}
		return &payload.Parsed{Costs: rows}, nil
	}
	return nil, errLean
}

// cost decodes a cost payload (payload.ParseCost): one FOCUS row or a
// non-empty array of rows, with the columns the cost detector reads
// (amounts, currency, charge period, service, tags, link). Tags given as
// a string holding JSON, and any doubt, are left to the strict parser.
func (l *leanDecoder) cost(b []byte) ([]payload.CostRow, error) {
	l.reset(b)
	var rows []payload.CostRow
	switch l.d.PeekKind() {
	case '{':
		rows = make([]payload.CostRow, 1)
		l.costRow(&rows[0])
	case '[':
		l.token()
		for l.item() {
			if len(rows) == l.lim.MaxCostRows {
				l.bail()
				break
			}
			rows = append(rows, payload.CostRow{Row: len(rows)})
			l.costRow(&rows[len(rows)-1])
		}
		if len(rows) == 0 {
			l.bail()
		}
	default:
		l.bail()
	}
	if err := l.finish(); err != nil {
		return nil, err
	}
	return rows, nil
}

func (l *leanDecoder) costRow(r *payload.CostRow) {
	if !l.openStrict() {
		return
	}
	var hasCurrency, hasStart, hasEnd bool
	var runID, jns, jn, tagKey string
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		switch string(t) {
		case "BilledCost":
			r.BilledCost = l.decimal()
		case "EffectiveCost":
			r.EffectiveCost = l.decimal()
		case "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity":
			l.decimal()
		case "BillingCurrency":
			var c []byte
			c, hasCurrency = l.text(3, true)
			if hasCurrency {
				if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
					l.bail()
				}
				r.BillingCurrency = string(c)
			}
		case "ChargePeriodStart":
			r.ChargePeriodStart, hasStart = l.timestamp(true)
		case "ChargePeriodEnd":
			r.ChargePeriodEnd, hasEnd = l.timestamp(true)
		case "BillingPeriodStart", "BillingPeriodEnd":
			l.timestamp(false)
		case "ServiceName":
			r.ServiceName = l.str(l.lim.MaxNameLen, false)
		case "ChargeCategory", "ChargeClass", "ChargeDescription", "ConsumedUnit", "PricingUnit",
			"ServiceProviderName", "ServiceCategory", "ResourceId", "ResourceName", "ResourceType",
			"RegionId", "SkuId", "SubAccountId":
			l.text(l.lim.MaxNameLen, false)
		case "Tags":
			r.Tags = l.costTags()
		case "x_RunId":
			runID = string(l.textOnly(l.lim.MaxNameLen))
		case "x_JobNamespace":
			jns = l.str(l.lim.MaxNameLen, false)
		case "x_JobName":
			jn = l.str(l.lim.MaxNameLen, false)
		case "x_LinkTag":
			tagKey = l.str(l.lim.MaxNameLen, false)
		default:
			l.skip()
		}
	}
	if (r.BilledCost == "" && r.EffectiveCost == "") || !hasCurrency || !hasStart || !hasEnd || r.ChargePeriodEnd.Before(r.ChargePeriodStart) {
		l.bail()
		return
	}
	switch {
	case runID != "":
		if len(runID) == 36 {
			if u, ok := canonicalUUID([]byte(runID)); ok {
				runID = u
			}
		}
		r.Link.RunID = runID
	case jns != "" || jn != "":
		if jns == "" || jn == "" {
			l.bail()
			return
		}
		r.Link.Job = &payload.JobRef{Namespace: jns, Name: jn}
	case tagKey != "":
		v, ok := r.Tags[tagKey]
		if !ok {
			l.bail()
			return
		}
		r.Link.Tag = &payload.Tag{Key: tagKey, Value: v}
	}
}

// textOnly is text of an optional string, its bytes valid until the next
// read.
func (l *leanDecoder) textOnly(maxLen int) []byte {
	b, _ := l.text(maxLen, false)
	return b
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// costTags decodes a Tags column given as an object: string values, or
// numbers and booleans kept as their JSON text.
func (l *leanDecoder) costTags() map[string]string {
	if !l.open() {
		return nil
	}
	tags := map[string]string{}
	for {
		t, ok := l.member()
		if !ok {
			break
		}
		k := string(t)
		if len(tags) == l.lim.MaxFields {
			l.bail()
			break
		}
		switch l.d.PeekKind() {
		case '"':
			tags[k] = l.str(l.lim.MaxNameLen, false)
		case '0', 't', 'f':
			v, err := l.d.ReadValue()
			if err != nil {
				l.err = err
				break
			}
			tags[k] = string(v)
		default:
			l.bail()
		}
	}
	return tags
}

// decimal reads an amount given as a JSON number or a decimal string
// (payload's obj.decimal), in canonical form. Plain decimals (no
// exponent) are put in canonical form here; others go through
// payload.ParseDecimal.
func (l *leanDecoder) decimal() payload.Decimal {
	if l.err != nil {
		return ""
	}
	var s string
	switch l.d.PeekKind() {
	case 'n':
		l.token()
		return ""
	case '"':
		b, _ := l.text(0, false)
		s = strings.TrimSpace(string(b))
	case '0':
		v, err := l.d.ReadValue()
		if err != nil {
			l.err = err
			return ""
		}
		s = string(v)
	default:
		l.bail()
		return ""
	}
	if d, ok := plainDecimal(s); ok {
		return d
	}
	d, ok := payload.ParseDecimal(s)
	if !ok {
		l.bail()
	}
	return d
}

// plainDecimal puts -?(0|[1-9][0-9]*)(\.[0-9]{1,18})? in payload.Decimal's
// canonical form (no trailing fractional zeros, no "-0"); ok is false for
// any other text (ParseDecimal decides it).
func plainDecimal(s string) (payload.Decimal, bool) {
	if len(s) == 0 || len(s) > 64 {
		return "", false
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == intStart || (s[intStart] == '0' && i-intStart > 1) {
		return "", false
	}
	end := len(s)
	if i < len(s) {
		if s[i] != '.' {
			return "", false
		}
		frac := i + 1
		for j := frac; j < len(s); j++ {
			if s[j] < '0' || s[j] > '9' {
				return "", false
			}
		}
		if n := len(s) - frac; n == 0 || n > 18 {
			return "", false
		}
		for end > frac && s[end-1] == '0' {
			end--
		}
		if end == frac {
			end = i // drop the point
		}
	}
	out := s[:end]
	if out == "-0" {
		out = "0"
	}
	return payload.Decimal(out), true
}
