package scanner

import (
	"container/heap"
	"math/rand/v2"
	"strconv"
	"testing"
)

// refQueue is the deadline queue on container/heap, as it was.
type refQueue []deadline

func (q refQueue) Len() int           { return len(q) }
func (q refQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q refQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *refQueue) Push(x any)        { *q = append(*q, x.(deadline)) }
func (q *refQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

// TestDeadlineQueueMatchesHeap: adds and popDue in random order (with
// many equal deadlines) pop the same keys in the same order as
// container/heap over the same deadlines.
func TestDeadlineQueueMatchesHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var q deadlineQueue
	var ref refQueue
	popped := 0
	for step := range 20000 {
		if rng.IntN(4) > 0 {
			at := int64(step/10 + rng.IntN(50))
			key := strconv.Itoa(step)
			q.add(at, key)
			heap.Push(&ref, deadline{at, key})
			continue
		}
		now := int64(step/10 + rng.IntN(20))
		var got []string
		q.popDue(now, func(k string) { got = append(got, k) })
		var want []string
		for ref.Len() > 0 && ref[0].at < now {
			want = append(want, heap.Pop(&ref).(deadline).key)
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: popped %d keys, container/heap %d", step, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("step %d: pop %d is %s, container/heap's %s", step, i, got[i], want[i])
			}
		}
		popped += len(got)
	}
	if popped == 0 || len(q) != ref.Len() {
		t.Fatalf("%d popped, %d and %d left", popped, len(q), ref.Len())
	}
}
