package payload

import (
	"bytes"
	"encoding/json"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CostRow is one FOCUS cost and usage row, with its optional link to the
// lineage graph. Column names are FOCUS's; amounts are exact decimals.
type CostRow struct {
	// Row is the row's position in the payload (0 for a single row).
	Row int `json:"row"`

	BilledCost     Decimal `json:"BilledCost,omitempty"`
	EffectiveCost  Decimal `json:"EffectiveCost,omitempty"`
	ListCost       Decimal `json:"ListCost,omitempty"`
	ContractedCost Decimal `json:"ContractedCost,omitempty"`

	BillingCurrency    string    `json:"BillingCurrency"`
	ChargePeriodStart  time.Time `json:"ChargePeriodStart"`
	ChargePeriodEnd    time.Time `json:"ChargePeriodEnd"`
	BillingPeriodStart time.Time `json:"BillingPeriodStart,omitzero"`
	BillingPeriodEnd   time.Time `json:"BillingPeriodEnd,omitzero"`

	ChargeCategory      string  `json:"ChargeCategory,omitempty"`
	ChargeClass         string  `json:"ChargeClass,omitempty"`
	ChargeDescription   string  `json:"ChargeDescription,omitempty"`
	ConsumedQuantity    Decimal `json:"ConsumedQuantity,omitempty"`
	ConsumedUnit        string  `json:"ConsumedUnit,omitempty"`
	PricingQuantity     Decimal `json:"PricingQuantity,omitempty"`
	PricingUnit         string  `json:"PricingUnit,omitempty"`
	ServiceProviderName string  `json:"ServiceProviderName,omitempty"`
	ServiceName         string  `json:"ServiceName,omitempty"`
	ServiceCategory     string  `json:"ServiceCategory,omitempty"`
	ResourceId          string  `json:"ResourceId,omitempty"`
	ResourceName        string  `json:"ResourceName,omitempty"`
	ResourceType        string  `json:"ResourceType,omitempty"`
	RegionId            string  `json:"RegionId,omitempty"`
	SkuId               string  `json:"SkuId,omitempty"`
	SubAccountId        string  `json:"SubAccountId,omitempty"`

	// Tags is the FOCUS Tags column (values as strings).
	Tags map[string]string `json:"Tags,omitempty"`

	// Link ties the row to the lineage graph (custom columns x_RunId,
	// x_JobNamespace and x_JobName, x_LinkTag).
	Link CostLink `json:"link,omitzero"`
}

// CostLink is what a cost row is attributed to. At most one of RunID, Job
// and Tag is set; precedence x_RunId, then x_JobNamespace/x_JobName, then
// x_LinkTag.
type CostLink struct {
	// RunID is a run id (lower-cased when it is a UUID).
	RunID string `json:"runId,omitempty"`
	// Job is a job; the cost belongs to the job as a whole, no one run.
	Job *JobRef `json:"job,omitempty"`
	// Tag links to every run and job carrying the tag Key=Value (an
	// OpenLineage tags facet); Value is the row's Tags[Key].
	Tag *Tag `json:"tag,omitempty"`
}

// Amount is the row's cost for roll-ups: EffectiveCost if present (FOCUS's
// amortized cost), else BilledCost.
func (r *CostRow) Amount() Decimal {
	if r.EffectiveCost != "" {
		return r.EffectiveCost
	}
	return r.BilledCost
}

// Decimal is an exact decimal number in canonical form: optional minus,
// digits, optional fraction without trailing zeros ("12.5", "-0.003",
// "0"). The empty Decimal means absent.
type Decimal string

var numberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// maxScale bounds the fractional digits a Decimal keeps exactly.
const maxScale = 18

// ParseDecimal reads a JSON number (as text) into canonical form.
func ParseDecimal(s string) (Decimal, bool) {
	if len(s) > 64 || !numberRE.MatchString(s) {
		return "", false
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 40 || e < -40 {
			return "", false
		}
		mant, exp = s[:i], e
	}
	scale := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		scale = len(mant) - i - 1
	}
	scale -= exp
	if scale < 0 {
		scale = 0
	}
	if scale > maxScale {
		return "", false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", false
	}
	return FormatRat(r, scale), true
}

// FormatRat writes r (a finite decimal) with up to scale fractional
// digits in canonical Decimal form.
func FormatRat(r *big.Rat, scale int) Decimal {
	s := r.FloatString(scale)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return Decimal(s)
}

// Rat returns d as a rational (0 for the empty Decimal).
func (d Decimal) Rat() *big.Rat {
	r := new(big.Rat)
	if d != "" {
		r.SetString(string(d))
	}
	return r
}

// Scale is the number of fractional digits of d.
func (d Decimal) Scale() int {
	if i := strings.IndexByte(string(d), '.'); i >= 0 {
		return len(d) - i - 1
	}
	return 0
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// ParseCost parses a cost payload: one FOCUS row (a JSON object) or a JSON
// array of rows. Each row needs BillingCurrency (ISO 4217, e.g. "USD"),
// ChargePeriodStart and ChargePeriodEnd (RFC 3339; end not before start)
// and BilledCost or EffectiveCost; amounts are JSON numbers or decimal
// strings. Link columns: x_RunId, or x_JobNamespace with x_JobName, or
// x_LinkTag naming one of the row's Tags.
func ParseCost(b []byte, lim Limits) ([]CostRow, error) {
	lim = lim.withDefaults()
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, &FieldError{Msg: "the cost payload is empty: send one FOCUS row (an object) or an array of rows"}
	}
	var items []json.RawMessage
	single := t[0] == '{'
	if single {
		items = []json.RawMessage{t}
	} else if t[0] == '[' {
		if err := json.Unmarshal(t, &items); err != nil {
			return nil, &FieldError{Msg: "the cost payload is not a JSON array of rows: " + err.Error()}
		}
		if len(items) == 0 {
			return nil, &FieldError{Msg: "the cost payload has no rows"}
		}
		if len(items) > lim.MaxCostRows {
			return nil, &FieldError{Msg: "the cost payload has " + strconv.Itoa(len(items)) + " rows; the limit is " + strconv.Itoa(lim.MaxCostRows)}
		}
	} else {
		return nil, &FieldError{Msg: "the cost payload must be one FOCUS row (an object) or an array of rows, got " + describe(t)}
	}
	rows := make([]CostRow, 0, len(items))
	for i, raw := range items {
		path := index("", i)
		if single {
			path = ""
		}
		r, err := costRow(path, raw, lim)
		if err != nil {
			return nil, err
		}
		r.Row = i
		rows = append(rows, r)
	}
	return rows, nil
}

func costRow(path string, raw json.RawMessage, lim Limits) (CostRow, error) {
	var r CostRow
	o, err := parseObject(path, raw)
	if err != nil {
		return r, err
	}
	for _, a := range []struct {
		name string
		dst  *Decimal
	}{{"BilledCost", &r.BilledCost}, {"EffectiveCost", &r.EffectiveCost}, {"ListCost", &r.ListCost}, {"ContractedCost", &r.ContractedCost}, {"ConsumedQuantity", &r.ConsumedQuantity}, {"PricingQuantity", &r.PricingQuantity}} {
		if *a.dst, err = o.decimal(a.name); err != nil {
			return r, err
		}
	}
	if r.BilledCost == "" && r.EffectiveCost == "" {
		return r, fieldErr(join(path, "BilledCost"), "is required (or EffectiveCost)")
	}
	if r.BillingCurrency, err = o.str("BillingCurrency", true, 3); err != nil {
		if fe, ok := err.(*FieldError); ok && strings.HasPrefix(fe.Msg, "is ") && strings.Contains(fe.Msg, "limit") {
			fe.Msg = "must be an ISO 4217 currency code such as USD"
		}
		return r, err
	}
	if !currencyRE.MatchString(r.BillingCurrency) {
		return r, fieldErr(join(path, "BillingCurrency"), "%q is not an ISO 4217 currency code such as USD", r.BillingCurrency)
	}
	if r.ChargePeriodStart, err = o.timestamp("ChargePeriodStart", true); err != nil {
		return r, err
	}
	if r.ChargePeriodEnd, err = o.timestamp("ChargePeriodEnd", true); err != nil {
		return r, err
	}
	if r.ChargePeriodEnd.Before(r.ChargePeriodStart) {
		return r, fieldErr(join(path, "ChargePeriodEnd"), "is before ChargePeriodStart")
	}
	if r.BillingPeriodStart, err = o.timestamp("BillingPeriodStart", false); err != nil {
		return r, err
	}
	if r.BillingPeriodEnd, err = o.timestamp("BillingPeriodEnd", false); err != nil {
		return r, err
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"ChargeCategory", &r.ChargeCategory}, {"ChargeClass", &r.ChargeClass}, {"ChargeDescription", &r.ChargeDescription},
		{"ConsumedUnit", &r.ConsumedUnit}, {"PricingUnit", &r.PricingUnit},
		{"ServiceProviderName", &r.ServiceProviderName}, {"ServiceName", &r.ServiceName}, {"ServiceCategory", &r.ServiceCategory},
		{"ResourceId", &r.ResourceId}, {"ResourceName", &r.ResourceName}, {"ResourceType", &r.ResourceType},
		{"RegionId", &r.RegionId}, {"SkuId", &r.SkuId}, {"SubAccountId", &r.SubAccountId},
	} {
		if *s.dst, err = o.str(s.name, false, lim.MaxNameLen); err != nil {
			return r, err
		}
	}
	if raw, ok := o.raw("Tags"); ok {
		// FOCUS exports Tags as a JSON object, or as a string holding one.
		if raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return r, fieldErr(join(path, "Tags"), "is not a valid JSON string: %v", err)
			}
			raw = json.RawMessage(s)
		}
		tags, err := parseObject(join(path, "Tags"), raw)
		if err != nil {
			return r, err
		}
		ks := tags.keys()
		if len(ks) > lim.MaxFields {
			return r, fieldErr(tags.path, "has %d tags; the limit is %d", len(ks), lim.MaxFields)
		}
		r.Tags = make(map[string]string, len(ks))
		for _, k := range ks {
			v := bytes.TrimSpace(tags.m[k])
			switch {
			case len(v) > 0 && v[0] == '"':
				s, err := tags.str(k, false, lim.MaxNameLen)
				if err != nil {
					return r, err
				}
				r.Tags[k] = s
			case len(v) > 0 && (v[0] == '{' || v[0] == '[' || v[0] == 'n'):
				return r, fieldErr(join(tags.path, k), "a tag value must be a string, number or boolean, got %s", describe(v))
			default:
				r.Tags[k] = string(v)
			}
		}
	}
	runID, err := o.str("x_RunId", false, lim.MaxNameLen)
	if err != nil {
		return r, err
	}
	jns, err := o.str("x_JobNamespace", false, lim.MaxNameLen)
	if err != nil {
		return r, err
	}
	jn, err := o.str("x_JobName", false, lim.MaxNameLen)
	if err != nil {
		return r, err
	}
	tagKey, err := o.str("x_LinkTag", false, lim.MaxNameLen)
	if err != nil {
		return r, err
	}
	switch {
	case runID != "":
		if len(runID) == 36 {
			if u, err := canonicalUUID(join(path, "x_RunId"), runID); err == nil {
				runID = u
			}
		}
		r.Link.RunID = runID
	case jns != "" || jn != "":
		if jns == "" || jn == "" {
			return r, fieldErr(join(path, "x_JobNamespace"), "x_JobNamespace and x_JobName go together: set both to link the cost to a job")
		}
		r.Link.Job = &JobRef{Namespace: jns, Name: jn}
	case tagKey != "":
		v, ok := r.Tags[tagKey]
		if !ok {
			return r, fieldErr(join(path, "x_LinkTag"), "names tag %q, which the row's Tags do not have", truncate(tagKey))
		}
		r.Link.Tag = &Tag{Key: tagKey, Value: v}
	}
	return r, nil
}

// decimal reads an amount given as a JSON number or a decimal string.
func (o obj) decimal(name string) (Decimal, error) {
	raw, ok := o.raw(name)
	if !ok {
		return "", nil
	}
	p := join(o.path, name)
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fieldErr(p, "is not a valid JSON string: %v", err)
		}
	}
	d, ok := ParseDecimal(strings.TrimSpace(s))
	if !ok {
		return "", fieldErr(p, "%q is not a decimal number (at most %d fractional digits)", truncate(s), maxScale)
	}
	return d, nil
}
