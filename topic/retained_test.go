package topic

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestRetainedMatchTable runs the shared matching table against the index:
// "+", "#", '$' names [MQTT-4.7.2-1], empty levels, byte-exact comparison
// [MQTT-4.7.3-4].
func TestRetainedMatchTable(t *testing.T) {
	for _, c := range matchCases {
		r := NewRetained[int]()
		r.Set(c.topic, 1)
		got := false
		r.Match(c.filter, func(topic string, v int) bool {
			if topic != c.topic || v != 1 {
				t.Errorf("filter %q: fn(%q, %d)", c.filter, topic, v)
			}
			got = true
			return true
		})
		if got != c.want {
			t.Errorf("filter %q, topic %q: match %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

// TestRetainedMatchAllTopics puts every topic of the table in one index and
// checks every filter against the reference.
func TestRetainedMatchAllTopics(t *testing.T) {
	r := NewRetained[string]()
	topics := map[string]bool{}
	for _, c := range matchCases {
		topics[c.topic] = true
		r.Set(c.topic, c.topic)
	}
	for _, c := range matchCases {
		var got, want []string
		r.Match(c.filter, func(topic, v string) bool {
			got = append(got, v)
			return true
		})
		for topic := range topics {
			if matchRef(c.filter, topic) {
				want = append(want, topic)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("filter %q: %q, want %q", c.filter, got, want)
		}
	}
}

// TestRetainedSetGetDelete: a new retained message replaces the topic's
// earlier one [MQTT-3.3.1-5]; Delete removes it (the broker deletes on an
// empty retained payload [MQTT-3.3.1-6] (v5) [MQTT-3.3.1-10] (v3.1.1)).
func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[string]()
	steps := []struct {
		op, topic, v string
		wantOK       bool
		wantLen      int
	}{
		{"get", "a/b", "", false, 0},
		{"set", "a/b", "1", true, 1},
		{"get", "a/b", "1", true, 1},
		{"get", "a", "", false, 1}, // an inner node has no message
		{"get", "a/b/c", "", false, 1},
		{"set", "a/b", "2", true, 1}, // replace
		{"get", "a/b", "2", true, 1},
		{"set", "a", "3", true, 2},
		{"set", "a/b/c", "4", true, 3},
		{"set", "/", "5", true, 4},
		{"get", "/", "5", true, 4},
		{"get", "", "", false, 4},
		{"delete", "a/b/x", "", false, 4},
		{"delete", "a/b", "", true, 3},
		{"delete", "a/b", "", false, 3},
		{"get", "a/b/c", "4", true, 3},
		{"get", "a", "3", true, 3},
		{"delete", "a/b/c", "", true, 2},
		{"delete", "a", "", true, 1},
		{"delete", "/", "", true, 0},
	}
	for i, st := range steps {
		var ok bool
		switch st.op {
		case "set":
			r.Set(st.topic, st.v)
			ok = true
		case "get":
			var v string
			v, ok = r.Get(st.topic)
			if v != st.v {
				t.Errorf("step %d: Get(%q) = %q, want %q", i, st.topic, v, st.v)
			}
		case "delete":
			ok = r.Delete(st.topic)
		}
		if ok != st.wantOK || r.Len() != st.wantLen {
			t.Errorf("step %d: %s(%q): ok %v Len %d, want %v %d", i, st.op, st.topic, ok, r.Len(), st.wantOK, st.wantLen)
		}
	}
	if r.nodes != 0 || r.root.children.keys != nil {
		t.Errorf("%d nodes left after deleting all", r.nodes)
	}
}

func TestRetainedMatchStops(t *testing.T) {
	r := NewRetained[int]()
	for i := range 100 {
		r.Set(fmt.Sprintf("a/%d/b", i), i)
		r.Set(fmt.Sprintf("a/%d", i), i)
	}
	for _, f := range []string{"#", "a/#", "a/+", "a/+/b", "+/+/+"} {
		calls := 0
		r.Match(f, func(string, int) bool {
			calls++
			return calls < 3
		})
		if calls != 3 {
			t.Errorf("filter %q: %d calls after fn returned false, want 3", f, calls)
		}
	}
}

// TestRetainedPrune: repeated set and delete cycles leave no node behind.
func TestRetainedPrune(t *testing.T) {
	r := NewRetained[int]()
	for cycle := range 3 {
		for i := range 5000 {
			r.Set(fmt.Sprintf("s/%d/%d/x", i%37, i), i)
			r.Set(fmt.Sprintf("s/%d", i%37), i)
		}
		for i := range 5000 {
			r.Delete(fmt.Sprintf("s/%d/%d/x", i%37, i))
			r.Delete(fmt.Sprintf("s/%d", i%37))
		}
		if r.Len() != 0 || r.nodes != 0 {
			t.Fatalf("cycle %d: Len %d nodes %d", cycle, r.Len(), r.nodes)
		}
	}
}

// TestRetainedConcurrent runs Set, Delete, Get and Match in parallel; run
// it with -race.
func TestRetainedConcurrent(t *testing.T) {
	r := NewRetained[int]()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				topic := fmt.Sprintf("a/%d/%d", w, i%50)
				r.Set(topic, i)
				if i%2 == 0 {
					r.Delete(topic)
				}
			}
		})
		wg.Go(func() {
			for i := range 500 {
				r.Match([]string{"#", "a/+/1", fmt.Sprintf("a/%d/#", w)}[i%3], func(topic string, v int) bool {
					return v >= 0
				})
				r.Get("a/1/1")
				r.Len()
			}
		})
	}
	wg.Wait()
}

// BenchmarkRetainedMatch: 100,000 retained topics; a "+" filter that picks
// 100 of them and a "#" filter that picks 1,000.
func BenchmarkRetainedMatch(b *testing.B) {
	r := NewRetained[*benchSession]()
	v := &benchSession{}
	for i := range 100000 {
		r.Set(fmt.Sprintf("site/%d/dev/%d/temp", i%100, i), v)
	}
	for _, f := range []string{"site/+/dev/4242/temp", "site/42/#", "site/7/dev/+/temp"} {
		b.Run(f, func(b *testing.B) {
			n := 0
			fn := func(string, *benchSession) bool { n++; return true }
			b.ReportAllocs()
			for b.Loop() {
				n = 0
				r.Match(f, fn)
			}
			b.ReportMetric(float64(n), "matches")
		})
	}
}

// DeleteIf deletes only the message it is asked about; Range reaches every
// message, $ topics included.
func TestRetainedDeleteIfRange(t *testing.T) {
	r := NewRetained[int]()
	r.Set("a/b", 1)
	r.Set("$SYS/x", 2)
	r.Set("c", 3)
	if r.DeleteIf("a/b", func(v int) bool { return v == 9 }) {
		t.Error("DeleteIf deleted a message drop refused")
	}
	if r.DeleteIf("nope", func(int) bool { return true }) {
		t.Error("DeleteIf deleted a topic that has no message")
	}
	if !r.DeleteIf("a/b", func(v int) bool { return v == 1 }) {
		t.Error("DeleteIf did not delete")
	}
	got := map[string]int{}
	r.Range(func(topic string, v int) bool { got[topic] = v; return true })
	if len(got) != 2 || got["$SYS/x"] != 2 || got["c"] != 3 || r.Len() != 2 {
		t.Errorf("Range after DeleteIf: %v (Len %d), want $SYS/x and c", got, r.Len())
	}
	if r.nodes != 2 { // $SYS/x (one node: nothing branches), c: a/b pruned
		t.Errorf("%d nodes after DeleteIf, want 2", r.nodes)
	}
}
