package scanner

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provledger/provledger/query/payload"
)

// maxBucketEntries caps the entries a daily cost finding cites (the
// largest contributions are kept).
const maxBucketEntries = 64

const dayMs = 24 * hourMs

// costSeriesKey is the state key of a series in one currency.
func costSeriesKey(name, currency string) string {
	return string(appendCostSeriesKey(nil, name, currency))
}

// appendCostSeriesKey appends costSeriesKey(name, currency) to b.
func appendCostSeriesKey[S ~string | ~[]byte](b []byte, name S, currency string) []byte {
	return append(append(append(b, name...), ' '), currency...)
}

// share is a cost series a row counts in, with the part of the row's
// amount that counts there; its name is Scanner.sb[off:end].
type share struct {
	off, end int
	part     float64
}

// seriesOf names the cost series a row counts in: its service, each of its
// tags and its job (linked directly, or through a run the scanner knows),
// each with the whole amount; and the datasets its run (or, for a row
// linked to a job, the job's latest completed run) wrote, each with an
// equal part of it. The names are written in s.sb (valid until the next
// call), so a row allocates nothing.
func (s *Scanner) seriesOf(r *payload.CostRow) []share {
	s.sb = s.sb[:0]
	out := s.shares[:0]
	if r.ServiceName != "" {
		off := len(s.sb)
		s.sb = append(append(s.sb, "service:"...), r.ServiceName...)
		out = append(out, share{off, len(s.sb), 1})
	}
	tags := len(out)
	for k, v := range r.Tags {
		off := len(s.sb)
		s.sb = append(append(append(append(s.sb, "tag:"...), k...), '='), v...)
		out = append(out, share{off, len(s.sb), 1})
	}
	slices.SortFunc(out[tags:], func(a, b share) int { return bytes.Compare(s.sb[a.off:a.end], s.sb[b.off:b.end]) })
	var datasets []string
	switch {
	case r.Link.Job != nil:
		off := len(s.sb)
		s.sb = append(append(append(append(s.sb, "job:"...), r.Link.Job.Namespace...), 0), r.Link.Job.Name...)
		if js := s.jobs.peekBytes(s.sb[off+4:]); js != nil { // the jobKey
			datasets = js.Outputs
		}
		out = append(out, s.jobShare(off))
	case r.Link.RunID != "":
		if rs := s.runs.peek(r.Link.RunID); rs != nil && rs.Job != "" {
			off := len(s.sb)
			s.sb = append(append(s.sb, "job:"...), rs.Job...)
			out = append(out, s.jobShare(off))
			datasets = rs.Outputs
		}
	}
	for _, d := range datasets {
		off := len(s.sb)
		s.sb = append(append(s.sb, "dataset:"...), d...)
		out = append(out, share{off, len(s.sb), 1 / float64(len(datasets))})
	}
	s.shares = out
	return out
}

// jobShare ends the share of a job whose "job:" and jobKey were written
// at s.sb[off:]: the name is subjectOf("job", key).
func (s *Scanner) jobShare(off int) share {
	if i := bytes.IndexByte(s.sb[off+4:], 0); i >= 0 {
		s.sb[off+4+i] = ':'
	}
	return share{off, len(s.sb), 1}
}

// costs runs the cost detector over one cost entry.
func (s *Scanner) costs(it *item, now time.Time, rows []payload.CostRow) {
	if s.opts.Cost.Disabled {
		return
	}
	idx := it.index
	var untagged int
	var untaggedAmt float64
	for i := range rows {
		r := &rows[i]
		amt := amountOf(r.Amount())
		if s.missingTags(r) {
			untagged++
			untaggedAmt += amt
		}
		day := floorDiv(r.ChargePeriodStart.UnixMilli(), dayMs)
		ym := r.ChargePeriodStart.UTC().Year()*100 + int(r.ChargePeriodStart.UTC().Month())
		for _, sh := range s.seriesOf(r) {
			name, amt := s.sb[sh.off:sh.end], amt*sh.part
			s.kb = appendCostSeriesKey(s.kb[:0], name, r.BillingCurrency)
			cs := s.cost.touchBytes(s.kb)
			switch {
			case cs.Day == 0 && len(cs.Entries) == 0 && len(cs.Daily) == 0:
				cs.Day = day
			case day > cs.Day:
				s.closeDay(now, name, r.BillingCurrency, cs)
				cs.Day, cs.Sum, cs.Entries, cs.Amounts = day, 0, nil, nil
			case day < cs.Day:
				// Late row for a closed day: history only.
				for j := len(cs.Daily) - 1; j >= 0; j-- {
					if cs.Daily[j].Day == day {
						cs.Daily[j].V += amt
						break
					}
				}
			}
			if day == cs.Day {
				cs.Sum += amt
				addContribution(cs, idx, amt)
			}
			if ym >= cs.Month {
				if ym > cs.Month {
					cs.Month, cs.MonthSum = ym, 0
				}
				cs.MonthSum += amt
				if bu := s.budgets.peekBytes(s.kb); bu != nil && cs.MonthSum > bu.Amount && cs.Flagged != ym {
					cs.Flagged = ym
					obs := cs.MonthSum
					s.emit(&Finding{Detector: "cost", Kind: "cost.budget", Severity: SeverityHigh,
						Subject: "series:" + string(name), Entries: []uint64{bu.Entry, idx}, Time: now, Observed: &obs,
						Expected: &Band{High: bu.Amount},
						Message:  fmt.Sprintf("%s spent %s %s in %04d-%02d, over its monthly budget of %s (policy entry %d)", string(name), num2(obs), r.BillingCurrency, ym/100, ym%100, num2(bu.Amount), bu.Entry),
						Details:  map[string]string{"currency": r.BillingCurrency, "month": fmt.Sprintf("%04d-%02d", ym/100, ym%100)}})
				}
			}
		}
	}
	if untagged > 0 {
		obs := untaggedAmt
		req := "any allocation tag"
		if len(s.opts.Cost.RequiredTags) > 0 {
			req = "tags " + strings.Join(s.opts.Cost.RequiredTags, ", ")
		}
		s.emit(&Finding{Detector: "cost", Kind: "cost.untagged", Severity: SeverityLow,
			Subject: fmt.Sprintf("entry:%d", idx), Entries: []uint64{idx}, Time: now, Observed: &obs,
			Message: fmt.Sprintf("%d of %d cost row(s) in entry %d (amount %s) lack %s", untagged, len(rows), idx, num2(obs), req),
			Details: map[string]string{"rows": fmt.Sprint(untagged)}})
	}
}

func (s *Scanner) missingTags(r *payload.CostRow) bool {
	if len(s.opts.Cost.RequiredTags) == 0 {
		return len(r.Tags) == 0
	}
	for _, k := range s.opts.Cost.RequiredTags {
		if r.Tags[k] == "" {
			return true
		}
	}
	return false
}

func addContribution(cs *costSeries, idx uint64, amt float64) {
	if n := len(cs.Entries); n > 0 && cs.Entries[n-1] == idx {
		cs.Amounts[n-1] += amt
		return
	}
	if len(cs.Entries) < maxBucketEntries {
		cs.Entries = append(cs.Entries, idx)
		cs.Amounts = append(cs.Amounts, amt)
		return
	}
	m := 0
	for i, a := range cs.Amounts {
		if a < cs.Amounts[m] {
			m = i
		}
	}
	if amt > cs.Amounts[m] {
		cs.Entries = slices.Delete(cs.Entries, m, m+1)
		cs.Amounts = slices.Delete(cs.Amounts, m, m+1)
		cs.Entries = append(cs.Entries, idx)
		cs.Amounts = append(cs.Amounts, amt)
	}
}

// closeDay judges a complete daily bucket and adds it to the history.
func (s *Scanner) closeDay(now time.Time, nameb []byte, currency string, cs *costSeries) {
	o := s.opts.Cost.Band
	v := cs.Sum
	wd := int8((cs.Day + 4) % 7) // 1970-01-01 was a Thursday
	if wd < 0 {
		wd += 7
	}
	dv := dayValue{Day: cs.Day, V: v}
	if b, ok := cs.Band.band(o, wd); ok && outside(b, v) && (v >= s.opts.Cost.MinDaily || b.Median >= s.opts.Cost.MinDaily) {
		clip := math.Max(b.Low, math.Min(b.High, v))
		dv.Clip = &clip
		obs := v
		dir := "above"
		if v < b.Low {
			dir = "below"
		}
		day := time.UnixMilli(cs.Day * dayMs).UTC().Format(time.DateOnly)
		name := string(nameb)
		s.emit(&Finding{Detector: "cost", Kind: "cost.band", Severity: bandSeverity(b, v),
			Subject: "series:" + name, Entries: slices.Clone(cs.Entries), Time: now, Observed: &obs, Expected: &b,
			Message: fmt.Sprintf("%s cost %s %s on %s, %s the band %s–%s (median %s of %d past %s)", name, num2(v), currency, day, dir, num2(b.Low), num2(b.High), num2(b.Median), b.Points, weekdayWord(o)),
			Details: map[string]string{"currency": currency, "day": day}})
	}
	cs.Band.add(o, v, wd)
	cs.Daily = append(cs.Daily, dv)
	if len(cs.Daily) > s.opts.Cost.History {
		cs.Daily = slices.Delete(cs.Daily, 0, len(cs.Daily)-s.opts.Cost.History)
	}
}

func weekdayWord(o BandOptions) string {
	if o.NotWeekly {
		return "days"
	}
	return "same weekdays"
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// amountOf is a Decimal as a float64: the nearest one, as
// Decimal.Rat().Float64() gives, without the big.Rat for the canonical
// decimals ParseFloat reads exactly as well (it rounds correctly too).
func amountOf(d payload.Decimal) float64 {
	if f, err := strconv.ParseFloat(string(d), 64); err == nil {
		return f
	}
	f, _ := d.Rat().Float64()
	return f
}

func num2(v float64) string { return fmt.Sprintf("%.2f", v) }
