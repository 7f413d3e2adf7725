package scanner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The binary state encoding (state format 2): each value is its fields in
// declaration order, integers as varints, floats as 8 bytes (IEEE 754,
// little-endian: exact, unlike a decimal rendering), strings and lists
// with a uvarint length first, booleans as one byte. A decoded list of
// length 0 is nil, as the JSON of format 1 (omitempty) gave.

// errStateValue: a stored value does not decode.
var errStateValue = errors.New("truncated or malformed value")

// wbuf appends an encoding.
type wbuf struct{ b []byte }

func (w *wbuf) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wbuf) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wbuf) float(v float64) {
	w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v))
}
func (w *wbuf) str(v string) { w.uint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *wbuf) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *wbuf) strs(v []string) {
	w.uint(uint64(len(v)))
	for _, s := range v {
		w.str(s)
	}
}

// rbuf reads an encoding; the first problem sticks in err and later reads
// return zero values.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errStateValue, what)
	}
	r.b = nil
}

func (r *rbuf) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("short float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *rbuf) bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < 1 || r.b[0] > 1 {
		r.fail("bad boolean")
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// count reads a list length; each element takes at least minSize bytes,
// so a length the remaining bytes cannot hold is an error (and no huge
// allocation).
func (r *rbuf) count(minSize int) int {
	n := r.uint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.fail("list longer than the value")
		return 0
	}
	return int(n)
}

func (r *rbuf) str() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *rbuf) strs() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// end reports the first problem, or bytes left over.
func (r *rbuf) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%w: %d bytes after the value", errStateValue, len(r.b))
	}
	return r.err
}

func (k *keyState) appendState(b []byte) []byte {
	w := wbuf{b}
	w.str(k.PEM)
	w.strs(k.Namespaces)
	w.bool(k.Granted)
	w.uint(k.GrantedAt)
	w.bool(k.Revoked)
	w.uint(k.RevokedAt)
	return w.b
}

func (k *keyState) readState(r *rbuf) {
	k.PEM = r.str()
	k.Namespaces = r.strs()
	k.Granted = r.bool()
	k.GrantedAt = r.uint()
	k.Revoked = r.bool()
	k.RevokedAt = r.uint()
}

func (a *approval) appendState(b []byte) []byte {
	w := wbuf{b}
	w.strs(a.Versions)
	return w.b
}

func (a *approval) readState(r *rbuf) { a.Versions = r.strs() }

func (u *budget) appendState(b []byte) []byte {
	w := wbuf{b}
	w.float(u.Amount)
	w.uint(u.Entry)
	return w.b
}

func (u *budget) readState(r *rbuf) {
	u.Amount = r.float()
	u.Entry = r.uint()
}

func (j *jobState) appendState(b []byte) []byte {
	w := wbuf{b}
	w.strs(j.Inputs)
	w.int(int64(j.Runs))
	w.str(j.LastVersion)
	w.strs(j.Flagged)
	w.strs(j.Outputs)
	return w.b
}

func (j *jobState) readState(r *rbuf) {
	j.Inputs = r.strs()
	j.Runs = int(r.int())
	j.LastVersion = r.str()
	j.Flagged = r.strs()
	j.Outputs = r.strs()
}

func (d *datasetState) appendState(b []byte) []byte {
	w := wbuf{b}
	w.strs(d.Schema)
	w.int(d.LastUpdate)
	w.uint(d.LastEntry)
	w.int(int64(d.Updates))
	w.uint(uint64(len(d.Gaps)))
	for _, g := range d.Gaps {
		w.int(g)
	}
	w.bool(d.Stale)
	w.int(d.Configured)
	return w.b
}

func (d *datasetState) readState(r *rbuf) {
	d.Schema = r.strs()
	d.LastUpdate = r.int()
	d.LastEntry = r.uint()
	d.Updates = int(r.int())
	if n := r.count(1); n > 0 {
		d.Gaps = make([]int64, n)
		for i := range d.Gaps {
			d.Gaps[i] = r.int()
		}
	}
	d.Stale = r.bool()
	d.Configured = r.int()
}

func (s *runState) appendState(b []byte) []byte {
	w := wbuf{b}
	w.str(s.Job)
	w.bool(s.Started)
	w.int(s.StartedAt)
	w.uint(s.StartEntry)
	w.bool(s.Done)
	w.int(s.DoneAt)
	w.int(s.MaxEvent)
	w.uint(s.MaxEntry)
	w.bool(s.HasInputs)
	w.strs(s.Outputs)
	return w.b
}

func (s *runState) readState(r *rbuf) {
	s.Job = r.str()
	s.Started = r.bool()
	s.StartedAt = r.int()
	s.StartEntry = r.uint()
	s.Done = r.bool()
	s.DoneAt = r.int()
	s.MaxEvent = r.int()
	s.MaxEntry = r.uint()
	s.HasInputs = r.bool()
	s.Outputs = r.strs()
}

func (s *series) appendState(b []byte) []byte {
	w := wbuf{b}
	w.uint(uint64(len(s.Points)))
	for _, p := range s.Points {
		w.float(p.V)
		w.b = append(w.b, byte(p.WD))
	}
	return w.b
}

func (s *series) readState(r *rbuf) {
	s.memo = nil
	n := r.count(9)
	if n == 0 {
		s.Points = nil
		return
	}
	s.Points = make([]point, n)
	for i := range s.Points {
		s.Points[i].V = r.float()
		if r.err == nil {
			s.Points[i].WD = int8(r.b[0])
			r.b = r.b[1:]
		}
	}
}

func (c *costSeries) appendState(b []byte) []byte {
	w := wbuf{b}
	w.int(c.Day)
	w.float(c.Sum)
	w.uint(uint64(len(c.Entries)))
	for i, e := range c.Entries {
		w.uint(e)
		a := 0.0 // (the lists have one length; a corrupt migrated state may not)
		if i < len(c.Amounts) {
			a = c.Amounts[i]
		}
		w.float(a)
	}
	w.b = c.Band.appendState(w.b)
	w.uint(uint64(len(c.Daily)))
	for _, d := range c.Daily {
		w.int(d.Day)
		w.float(d.V)
		w.bool(d.Clip != nil)
		if d.Clip != nil {
			w.float(*d.Clip)
		}
	}
	w.int(int64(c.Month))
	w.float(c.MonthSum)
	w.int(int64(c.Flagged))
	return w.b
}

func (c *costSeries) readState(r *rbuf) {
	c.Day = r.int()
	c.Sum = r.float()
	if n := r.count(9); n > 0 {
		c.Entries, c.Amounts = make([]uint64, n), make([]float64, n)
		for i := range n {
			c.Entries[i] = r.uint()
			c.Amounts[i] = r.float()
		}
	}
	c.Band.readState(r)
	if n := r.count(10); n > 0 {
		c.Daily = make([]dayValue, n)
		for i := range c.Daily {
			d := &c.Daily[i]
			d.Day = r.int()
			d.V = r.float()
			if r.bool() {
				v := r.float()
				d.Clip = &v
			}
		}
	}
	c.Month = int(r.int())
	c.MonthSum = r.float()
	c.Flagged = int(r.int())
}
