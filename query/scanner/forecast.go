package scanner

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrForecast is wrapped when a series cannot be forecast.
var ErrForecast = errors.New("scanner: cannot forecast")

// ForecastMethod names the forecast method in answers.
const ForecastMethod = "holt-winters additive (ETS(A,A,A)), weekly season, damped trend φ=0.98, α/β/γ by one-step SSE on a grid"

// Fit is a fitted Holt-Winters model and its forecast.
type Fit struct {
	Alpha, Beta, Gamma, Phi float64
	// Sigma is the RMSE of the one-step-ahead errors over the history.
	Sigma float64
	// Mean, Low and High are the forecast and its prediction interval,
	// one value per day ahead.
	Mean, Low, High []float64
}

var (
	gridAlpha = []float64{0.05, 0.1, 0.2, 0.3, 0.5}
	gridBeta  = []float64{0.01, 0.05, 0.1}
	gridGamma = []float64{0.05, 0.1, 0.2, 0.4}
)

const damping = 0.98

// HoltWinters fits additive Holt-Winters with season length period to y
// (at least two seasons) and forecasts horizon steps with a z-sigma
// prediction interval. The smoothing parameters minimise the one-step
// squared error over a fixed grid (deterministic); the interval uses the
// ETS(A,A,A) variance of Hyndman et al. (2008, class 1):
// σ²·[1 + (h−1)(α² + αβh + β²h(2h−1)/6) + γk(2α + γ + βm(k+1))],
// k = ⌊(h−1)/m⌋. Forecasts of a cost are floored at 0.
func HoltWinters(y []float64, period, horizon int, z float64) (*Fit, error) {
	m := period
	if m < 1 || len(y) < 2*m {
		return nil, fmt.Errorf("%w: %d points, need at least two seasons (%d)", ErrForecast, len(y), 2*m)
	}
	best := &Fit{Sigma: math.Inf(1)}
	for _, a := range gridAlpha {
		for _, b := range gridBeta {
			for _, g := range gridGamma {
				sse, _, _, _ := hwRun(y, m, a, b, g)
				s := math.Sqrt(sse / float64(len(y)-m))
				if s < best.Sigma {
					best = &Fit{Alpha: a, Beta: b, Gamma: g, Phi: damping, Sigma: s}
				}
			}
		}
	}
	_, l, tr, season := hwRun(y, m, best.Alpha, best.Beta, best.Gamma)
	n := len(y)
	best.Mean = make([]float64, horizon)
	best.Low = make([]float64, horizon)
	best.High = make([]float64, horizon)
	damp := 0.0
	for h := 1; h <= horizon; h++ {
		damp += math.Pow(damping, float64(h))
		f := l + damp*tr + season[(n+h-1)%m]
		a, b, g := best.Alpha, best.Beta, best.Gamma
		k := float64((h - 1) / m)
		hf := float64(h)
		v := 1 + (hf-1)*(a*a+a*b*hf+b*b*hf*(2*hf-1)/6) + g*k*(2*a+g+b*float64(m)*(k+1))
		w := z * best.Sigma * math.Sqrt(v)
		best.Mean[h-1] = math.Max(0, f)
		best.Low[h-1] = math.Max(0, f-w)
		best.High[h-1] = math.Max(0, f+w)
	}
	return best, nil
}

// hwRun runs the smoother and returns the one-step SSE (after the first
// season) and the final level, trend and seasonal terms (indexed by
// position mod m).
func hwRun(y []float64, m int, a, b, g float64) (sse, level, trend float64, season []float64) {
	var s0, s1 float64
	for i := 0; i < m; i++ {
		s0 += y[i]
		s1 += y[m+i]
	}
	s0 /= float64(m)
	s1 /= float64(m)
	level, trend = s0, (s1-s0)/float64(m)
	season = make([]float64, m)
	for i := 0; i < m; i++ {
		season[i] = y[i] - s0
	}
	for t := m; t < len(y); t++ {
		si := t % m
		f := level + damping*trend + season[si]
		e := y[t] - f
		sse += e * e
		prev := level
		level = a*(y[t]-season[si]) + (1-a)*(prev+damping*trend)
		trend = b*(level-prev) + (1-b)*damping*trend
		season[si] = g*(y[t]-level) + (1-g)*season[si]
	}
	return sse, level, trend, season
}

// MAPE is the mean absolute percentage error of forecast f against actual
// y (points where y is 0 are left out).
func MAPE(y, f []float64) float64 {
	var s float64
	n := 0
	for i := range min(len(y), len(f)) {
		if y[i] == 0 {
			continue
		}
		s += math.Abs((y[i] - f[i]) / y[i])
		n++
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// ForecastDay is one day of a forecast.
type ForecastDay struct {
	Day  time.Time `json:"day"`
	Mean float64   `json:"mean"`
	Low  float64   `json:"low"`
	High float64   `json:"high"`
}

// SeriesForecast is the forecast of one cost series.
type SeriesForecast struct {
	Series   string        `json:"series"`
	Currency string        `json:"currency"`
	Method   string        `json:"method"`
	History  int           `json:"historyDays"`
	Fit      *Fit          `json:"-"`
	Days     []ForecastDay `json:"days"`
	// Total is the sum of the forecast means over the horizon.
	Total float64 `json:"total"`
	// Budget is the series' monthly budget from policy, if any;
	// MonthToDate its spend in the month of the last complete day;
	// Exhausted the first day on which month-to-date spend plus the
	// forecast passes the budget (nil: not within the horizon).
	Budget      *float64   `json:"budget,omitempty"`
	MonthToDate float64    `json:"monthToDate"`
	Exhausted   *time.Time `json:"exhausted,omitempty"`
}

// Forecast forecasts every cost series whose name contains match (all
// when empty), ordered by name, from the complete days the scanner has
// seen. Series with less than two weeks of history are left out.
func (s *Scanner) Forecast(match string) ([]SeriesForecast, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts.Forecast
	var out []SeriesForecast
	names := s.cost.keys()
	for _, key := range names {
		cs := s.cost.peek(key)
		i := strings.LastIndexByte(key, ' ')
		name, cur := key[:i], key[i+1:]
		if match != "" && !strings.Contains(name, match) {
			continue
		}
		y, first := dense(cs.Daily)
		if len(y) < 14 {
			continue
		}
		fit, err := HoltWinters(y, 7, o.Horizon, o.Z)
		if err != nil {
			continue
		}
		sf := SeriesForecast{Series: name, Currency: cur, Method: ForecastMethod, History: len(y), Fit: fit}
		lastDay := first + int64(len(y)) - 1
		for h := range fit.Mean {
			d := time.UnixMilli((lastDay + int64(h) + 1) * dayMs).UTC()
			sf.Days = append(sf.Days, ForecastDay{Day: d, Mean: fit.Mean[h], Low: fit.Low[h], High: fit.High[h]})
			sf.Total += fit.Mean[h]
		}
		if bu := s.budgets.peek(key); bu != nil {
			amt := bu.Amount
			sf.Budget = &amt
			last := time.UnixMilli(lastDay * dayMs).UTC()
			ym := last.Year()*100 + int(last.Month())
			for _, dv := range cs.Daily {
				d := time.UnixMilli(dv.Day * dayMs).UTC()
				if d.Year()*100+int(d.Month()) == ym {
					sf.MonthToDate += dv.V
				}
			}
			spent, month := sf.MonthToDate, ym
			for _, fd := range sf.Days {
				if m := fd.Day.Year()*100 + int(fd.Day.Month()); m != month {
					month, spent = m, 0
				}
				spent += fd.Mean
				if spent > amt {
					d := fd.Day
					sf.Exhausted = &d
					break
				}
			}
		}
		out = append(out, sf)
	}
	return out, nil
}

// dense turns daily values into a gap-free series (missing days are 0;
// days that fell outside their band count at the band's edge) and returns
// it with its first day.
func dense(ds []dayValue) ([]float64, int64) {
	if len(ds) == 0 {
		return nil, 0
	}
	ds = slices.Clone(ds)
	sort.Slice(ds, func(a, b int) bool { return ds[a].Day < ds[b].Day })
	first := ds[0].Day
	y := make([]float64, ds[len(ds)-1].Day-first+1)
	for _, d := range ds {
		y[d.Day-first] += d.forecastValue()
	}
	return y, first
}

// Backtest fits on all but the last horizon points of fitOn (the series as
// the forecast sees it), forecasts them, and returns the MAPE of the
// forecast against the same points of actual, and the share of actual
// values inside the prediction interval. fitOn and actual have the same
// length (pass y twice for a plain backtest).
func Backtest(fitOn, actual []float64, period, horizon int, z float64) (mape, coverage float64, err error) {
	if len(fitOn) != len(actual) || len(fitOn) <= horizon {
		return 0, 0, fmt.Errorf("%w: %d and %d points, horizon %d", ErrForecast, len(fitOn), len(actual), horizon)
	}
	fit, err := HoltWinters(fitOn[:len(fitOn)-horizon], period, horizon, z)
	if err != nil {
		return 0, 0, err
	}
	test := actual[len(actual)-horizon:]
	in := 0
	for i, v := range test {
		if v >= fit.Low[i] && v <= fit.High[i] {
			in++
		}
	}
	return MAPE(test, fit.Mean), float64(in) / float64(len(test)), nil
}

// CostHistory returns the gap-free daily totals of every cost series
// whose name contains match, keyed "NAME CURRENCY": as they were
// (actual) and as the forecast sees them (days outside their band at the
// band's edge).
func (s *Scanner) CostHistory(match string) (actual, forecast map[string][]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	actual, forecast = map[string][]float64{}, map[string][]float64{}
	s.cost.each(func(key string, cs *costSeries) {
		if match == "" || strings.Contains(key, match) {
			forecast[key], _ = dense(cs.Daily)
			raw := slices.Clone(cs.Daily)
			for i := range raw {
				raw[i].Clip = nil
			}
			actual[key], _ = dense(raw)
		}
	})
	return actual, forecast
}
