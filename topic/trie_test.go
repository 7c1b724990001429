package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// match runs one Match into a fresh Matches.
func matchAll(tr *Trie[string], topic, publisher string) []Delivery[string] {
	var m Matches[string]
	tr.Match(topic, publisher, nil, &m)
	return m.Deliveries
}

// byName returns the non-shared delivery of subscriber s.
func byName(t *testing.T, ds []Delivery[string], s string) Delivery[string] {
	t.Helper()
	var found []Delivery[string]
	for _, d := range ds {
		if d.Subscriber == s && d.Share == "" {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d deliveries for %q in %+v, want 1", len(found), s, ds)
	}
	return found[0]
}

func sortedIDs(ids []uint32) []uint32 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// TestTrieOverlapOneDelivery: a subscriber with overlapping subscriptions
// gets one delivery at the highest QoS [MQTT-3.3.5-1] (v3.1.1)
// [MQTT-3.3.4-2] (v5), carrying every subscription identifier
// [MQTT-3.3.4-3] [MQTT-3.3.4-4].
func TestTrieOverlapOneDelivery(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	for _, s := range []Subscription[string]{
		{Subscriber: "A", Filter: "a/+", QoS: 0, ID: 1},
		{Subscriber: "A", Filter: "a/#", QoS: 2, ID: 2},
		{Subscriber: "A", Filter: "a/b", QoS: 1},
		{Subscriber: "A", Filter: "#", QoS: 1, ID: 3, RetainAsPublished: true},
		{Subscriber: "A", Filter: "x/y", QoS: 2, ID: 99},
		{Subscriber: "B", Filter: "a/b", QoS: 1, ID: 7},
		{Subscriber: "C", Filter: "+/b", QoS: 0},
	} {
		tr.Add(s)
	}
	ds := matchAll(tr, "a/b", "")
	if len(ds) != 3 {
		t.Fatalf("got %d deliveries, want 3: %+v", len(ds), ds)
	}
	a := byName(t, ds, "A")
	if a.QoS != 2 || !a.RetainAsPublished || !slices.Equal(sortedIDs(a.IDs), []uint32{1, 2, 3}) {
		t.Errorf("A: %+v, want QoS 2, RetainAsPublished, IDs [1 2 3]", a)
	}
	if b := byName(t, ds, "B"); b.QoS != 1 || b.RetainAsPublished || !slices.Equal(b.IDs, []uint32{7}) {
		t.Errorf("B: %+v, want QoS 1, IDs [7]", b)
	}
	if c := byName(t, ds, "C"); c.QoS != 0 || c.IDs != nil {
		t.Errorf("C: %+v, want QoS 0, no IDs", c)
	}

	// QoS stays at the highest of those that match "a": "a/#" and "#".
	a = byName(t, matchAll(tr, "a", ""), "A")
	if a.QoS != 2 || !slices.Equal(sortedIDs(a.IDs), []uint32{2, 3}) {
		t.Errorf("A on \"a\": %+v, want QoS 2, IDs [2 3]", a)
	}
}

// TestTrieOverlapManySubscribers takes the map path of the dedup: more
// subscribers than linearMax, each with several overlapping subscriptions
// found in interleaved order.
func TestTrieOverlapManySubscribers(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	const n = 100
	for i := range n {
		s := fmt.Sprint("s", i)
		tr.Add(Subscription[string]{Subscriber: s, Filter: "a/b/c", QoS: 0, ID: uint32(3*i + 1)})
		tr.Add(Subscription[string]{Subscriber: s, Filter: "a/+/c", QoS: byte(i % 3), ID: uint32(3*i + 2)})
		if i%2 == 0 {
			tr.Add(Subscription[string]{Subscriber: s, Filter: "a/#", QoS: 1, ID: uint32(3*i + 3)})
		}
	}
	var m Matches[string]
	for round := range 3 { // reuse m
		m.Reset()
		tr.Match("a/b/c", "", nil, &m)
		if len(m.Deliveries) != n {
			t.Fatalf("round %d: %d deliveries, want %d", round, len(m.Deliveries), n)
		}
		for i := range n {
			d := byName(t, m.Deliveries, fmt.Sprint("s", i))
			want := []uint32{uint32(3*i + 1), uint32(3*i + 2)}
			wantQoS := byte(i % 3)
			if i%2 == 0 {
				want = append(want, uint32(3*i+3))
				wantQoS = max(wantQoS, 1)
			}
			if d.QoS != wantQoS || !slices.Equal(sortedIDs(d.IDs), want) {
				t.Errorf("s%d: %+v, want QoS %d, IDs %v", i, d, wantQoS, want)
			}
		}
	}
}

// TestTrieNoLocal: a No Local subscription never receives its own
// subscriber's messages [MQTT-3.8.3-3] (v5); its other subscriptions do.
func TestTrieNoLocal(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "a/#", QoS: 2, ID: 1, NoLocal: true})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "a/b", QoS: 1, ID: 2})
	tr.Add(Subscription[string]{Subscriber: "B", Filter: "a/#", QoS: 2, NoLocal: true})

	tests := []struct {
		name, topic, publisher string
		want                   map[string]Delivery[string]
	}{
		{"other publisher", "a/b", "C", map[string]Delivery[string]{
			"A": {QoS: 2, IDs: []uint32{1, 2}}, "B": {QoS: 2}}},
		{"A publishes, A's other subscription counts", "a/b", "A", map[string]Delivery[string]{
			"A": {QoS: 1, IDs: []uint32{2}}, "B": {QoS: 2}}},
		{"A publishes, only No Local matches", "a/c", "A", map[string]Delivery[string]{
			"B": {QoS: 2}}},
		{"B publishes", "a/c", "B", map[string]Delivery[string]{
			"A": {QoS: 2, IDs: []uint32{1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := matchAll(tr, tc.topic, tc.publisher)
			if len(ds) != len(tc.want) {
				t.Fatalf("deliveries %+v, want %v", ds, tc.want)
			}
			for s, w := range tc.want {
				d := byName(t, ds, s)
				if d.QoS != w.QoS || !slices.Equal(sortedIDs(d.IDs), w.IDs) {
					t.Errorf("%s: %+v, want QoS %d IDs %v", s, d, w.QoS, w.IDs)
				}
			}
		})
	}
}

// TestTrieReplace: the same subscriber and filter replaces the subscription
// [MQTT-3.8.4-3]; another subscriber or filter adds one.
func TestTrieReplace(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	steps := []struct {
		sub          Subscription[string]
		wantReplaced bool
		wantCount    int
	}{
		{Subscription[string]{Subscriber: "A", Filter: "a/+", QoS: 0, ID: 1}, false, 1},
		{Subscription[string]{Subscriber: "A", Filter: "a/+", QoS: 2, ID: 5}, true, 1},
		{Subscription[string]{Subscriber: "B", Filter: "a/+", QoS: 1}, false, 2},
		{Subscription[string]{Subscriber: "A", Filter: "a/#", QoS: 1}, false, 3},
		{Subscription[string]{Subscriber: "A", Filter: "$share/g/a/+", Share: "g", QoS: 1}, false, 4},
		{Subscription[string]{Subscriber: "A", Filter: "$share/g/a/+", Share: "g", QoS: 2}, true, 4},
		{Subscription[string]{Subscriber: "A", Filter: "$share/h/a/+", Share: "h"}, false, 5},
	}
	for i, st := range steps {
		if got := tr.Add(st.sub); got != st.wantReplaced {
			t.Errorf("step %d: Add replaced = %v, want %v", i, got, st.wantReplaced)
		}
		if got := tr.Count(); got != st.wantCount {
			t.Errorf("step %d: Count = %d, want %d", i, got, st.wantCount)
		}
	}
	a := byName(t, matchAll(tr, "a/x", ""), "A")
	if a.QoS != 2 || !slices.Equal(a.IDs, []uint32{5}) {
		t.Errorf("A after replace: %+v, want QoS 2 IDs [5]", a)
	}
}

// TestTrieRemoveExact: UNSUBSCRIBE compares filters character by character,
// wildcards taken literally [MQTT-3.10.4-1].
func TestTrieRemoveExact(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "a/#"})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "$share/g/a/+", Share: "g"})
	tr.Add(Subscription[string]{Subscriber: "B", Filter: "a/+"})
	tests := []struct {
		sub, filter string
		want        bool
	}{
		{"A", "a/+", false},  // "a/+" is not "a/#"
		{"A", "a/b", false},  // a name it matches is not the filter
		{"A", "a", false},    // "a/#" matches "a" but is not it
		{"A", "a/#/", false}, // no normalisation
		{"A", "#", false},
		{"A", "$share/h/a/+", false}, // other group
		{"A", "$share/g/a/#", false}, // other inner filter
		{"C", "a/#", false},          // other subscriber
		{"B", "a/#", false},
		{"A", "a/#", true},
		{"A", "a/#", false}, // already gone
		{"A", "$share/g/a/+", true},
		{"B", "a/+", true},
	}
	for _, tc := range tests {
		if got := tr.Remove(tc.sub, tc.filter); got != tc.want {
			t.Errorf("Remove(%q, %q) = %v, want %v", tc.sub, tc.filter, got, tc.want)
		}
	}
	if tr.Count() != 0 || tr.nodes != 0 || !tr.root.empty() {
		t.Errorf("after removing all: Count %d, nodes %d", tr.Count(), tr.nodes)
	}
}

// TestTrieRemoveShareLiteral: a v3.1.1 session may subscribe to
// "$share/g/x" as literal levels; Remove finds it either way.
func TestTrieRemoveShareLiteral(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "$share/g/x"})
	if ds := matchAll(tr, "$share/g/x", ""); len(ds) != 1 || ds[0].Share != "" {
		t.Fatalf("literal $share filter: %+v", ds)
	}
	if ds := matchAll(tr, "x", ""); len(ds) != 0 {
		t.Fatalf("literal $share filter matched \"x\": %+v", ds)
	}
	if !tr.Remove("A", "$share/g/x") || tr.nodes != 0 {
		t.Fatalf("Remove literal $share filter failed; nodes %d", tr.nodes)
	}
}

// TestTriePrune: nodes left empty are pruned, so repeated subscribe and
// unsubscribe cycles leave nothing behind.
func TestTriePrune(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	r := rand.New(rand.NewPCG(5, 6))
	type key struct{ s, f string }
	for cycle := range 5 {
		var added []key
		for i := range 2000 {
			s := fmt.Sprint("s", i%50)
			f := randomLevels(r, true)
			if !strings.HasSuffix(f, "#") { // "#" must stay last
				f += fmt.Sprintf("/%d", r.IntN(20))
			}
			if !ValidFilter(f) {
				t.Fatalf("invalid filter %q", f)
			}
			sub := Subscription[string]{Subscriber: s, Filter: f}
			if i%7 == 0 {
				sub.Share = fmt.Sprint("g", i%3)
				sub.Filter = "$share/" + sub.Share + "/" + f
			}
			if !tr.Add(sub) {
				added = append(added, key{s, sub.Filter})
			}
		}
		if tr.Count() != len(added) {
			t.Fatalf("cycle %d: Count %d, want %d", cycle, tr.Count(), len(added))
		}
		r.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
		for _, k := range added {
			if !tr.Remove(k.s, k.f) {
				t.Fatalf("cycle %d: Remove(%q, %q) = false", cycle, k.s, k.f)
			}
		}
		if tr.Count() != 0 || tr.nodes != 0 || !tr.root.empty() {
			t.Fatalf("cycle %d: Count %d, nodes %d after removing all", cycle, tr.Count(), tr.nodes)
		}
	}
}

// TestSubListIndex exercises the subscriber index of long lists: growth past
// indexMin, replace, removal from the middle, and shrinking back.
func TestSubListIndex(t *testing.T) {
	var l subList[int]
	for i := range 100 {
		l.put(Subscription[int]{Subscriber: i, QoS: 0})
	}
	if l.index == nil {
		t.Fatal("no index past indexMin")
	}
	if !l.put(Subscription[int]{Subscriber: 42, QoS: 2}) || l.subs[l.find(42)].QoS != 2 {
		t.Fatal("replace through index failed")
	}
	for i := 0; i < 100; i += 2 {
		if !l.remove(i) {
			t.Fatalf("remove(%d) = false", i)
		}
	}
	for i := range 100 {
		if got := l.find(i) >= 0; got != (i%2 == 1) {
			t.Fatalf("find(%d) = %v", i, got)
		}
		if j := l.find(i); j >= 0 && l.subs[j].Subscriber != i {
			t.Fatalf("find(%d) points at %d", i, l.subs[j].Subscriber)
		}
	}
	for i := 1; i < 100; i += 2 {
		l.remove(i)
	}
	if l.index != nil || l.subs != nil {
		t.Fatal("empty list kept its storage")
	}
}

// TestTrieMatchAppends: Match appends to out without merging with what an
// earlier Match left there.
func TestTrieMatchAppends(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "a", ID: 1})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "b", ID: 2})
	var m Matches[string]
	tr.Match("a", "", nil, &m)
	tr.Match("b", "", nil, &m)
	if len(m.Deliveries) != 2 || !slices.Equal(m.Deliveries[0].IDs, []uint32{1}) ||
		!slices.Equal(m.Deliveries[1].IDs, []uint32{2}) {
		t.Fatalf("deliveries %+v", m.Deliveries)
	}
	m.Reset()
	if len(m.Deliveries) != 0 {
		t.Fatal("Reset kept deliveries")
	}
}

// benchSession stands in for the broker's session.
type benchSession struct{ id int }

// build100k fills a trie with 100,000 subscriptions of mixed shapes, held by
// 10,000 sessions.
func build100k() (*Trie[*benchSession], []*benchSession) {
	tr := NewTrie[*benchSession](TrieOptions{})
	sessions := make([]*benchSession, 10000)
	for i := range sessions {
		sessions[i] = &benchSession{id: i}
	}
	for i := range 100000 {
		var f string
		switch i % 5 {
		case 0:
			f = fmt.Sprintf("dev/%d/+/temp", i/5)
		case 1:
			f = fmt.Sprintf("site/%d/#", i/5)
		case 2:
			f = fmt.Sprintf("dev/%d/room%d/temp", i/5%1000, i/5)
		case 3:
			f = fmt.Sprintf("+/%d/status", i/5)
		case 4:
			f = fmt.Sprintf("fleet/%d/truck/%d/+", i/5%100, i/5)
		}
		tr.Add(Subscription[*benchSession]{Subscriber: sessions[i%len(sessions)], Filter: f, QoS: byte(i % 3), ID: uint32(i%7) + 1})
	}
	// A few catch-alls, one subscriber overlapping another's.
	tr.Add(Subscription[*benchSession]{Subscriber: sessions[1], Filter: "dev/#", QoS: 1, ID: 100})
	tr.Add(Subscription[*benchSession]{Subscriber: sessions[2], Filter: "+/42/+/temp", QoS: 2})
	tr.Add(Subscription[*benchSession]{Subscriber: sessions[3], Filter: "#", QoS: 0})
	tr.Add(Subscription[*benchSession]{Subscriber: sessions[4], Filter: "$share/g/dev/+/+/temp", Share: "g", QoS: 1})
	tr.Add(Subscription[*benchSession]{Subscriber: sessions[5], Filter: "$share/g/dev/+/+/temp", Share: "g", QoS: 1})
	return tr, sessions
}

const topic100k = "dev/42/room42/temp"

// TestTrieMatchNoAlloc: with out reused, matching against 100,000
// subscriptions does not allocate; nor does a 1,000-subscriber fan-out with
// overlapping subscriptions (dedup map path).
func TestTrieMatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tr, sessions := build100k()
	var m Matches[*benchSession]
	tr.Match(topic100k, sessions[9], nil, &m)
	if n := len(m.Deliveries); n != 6 {
		t.Fatalf("%d deliveries, want 6: %+v", n, m.Deliveries)
	}
	allocs := testing.AllocsPerRun(100, func() {
		m.Reset()
		tr.Match(topic100k, sessions[9], nil, &m)
	})
	if allocs != 0 {
		t.Errorf("Match over 100k subscriptions: %v allocs, want 0", allocs)
	}

	fan := NewTrie[*benchSession](TrieOptions{})
	for i, s := range sessions[:1000] {
		fan.Add(Subscription[*benchSession]{Subscriber: s, Filter: "a/b", ID: uint32(i + 1)})
		fan.Add(Subscription[*benchSession]{Subscriber: s, Filter: "a/+", ID: uint32(i + 5000)})
	}
	m.Reset()
	fan.Match("a/b", nil, nil, &m)
	if len(m.Deliveries) != 1000 || len(m.Deliveries[0].IDs) != 2 {
		t.Fatalf("fan-out: %d deliveries", len(m.Deliveries))
	}
	allocs = testing.AllocsPerRun(100, func() {
		m.Reset()
		fan.Match("a/b", nil, nil, &m)
	})
	if allocs != 0 {
		t.Errorf("overlapping fan-out of 1000: %v allocs, want 0", allocs)
	}
}

// TestTrieConcurrent runs Add, Remove and Match from many goroutines; run
// it with -race.
func TestTrieConcurrent(t *testing.T) {
	tr := NewTrie[int](TrieOptions{})
	filters := []string{"a/b", "a/+", "a/#", "#", "+/b", "$share/g/a/+", "$share/h/#", "x/y/z"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				f := filters[(i+w)%len(filters)]
				sub := Subscription[int]{Subscriber: w, Filter: f, QoS: byte(i % 3), ID: uint32(i)}
				if g, _, ok := ParseShare(f); ok {
					sub.Share = g
				}
				tr.Add(sub)
				if i%3 == 0 {
					tr.Remove(w, f)
				}
			}
		})
		wg.Go(func() {
			var m Matches[int]
			for i := range 2000 {
				m.Reset()
				tr.Match([]string{"a/b", "a", "x/y/z", "$SYS/a"}[i%4], w, func(s int) bool { return s%2 == 0 }, &m)
				for _, d := range m.Deliveries {
					if d.Subscriber < 0 || d.Subscriber >= 8 {
						t.Errorf("bad delivery %+v", d)
					}
				}
			}
		})
	}
	wg.Wait()
	for w := range 8 {
		for _, f := range filters {
			tr.Remove(w, f)
		}
	}
	if tr.Count() != 0 || tr.nodes != 0 {
		t.Errorf("Count %d, nodes %d after removing all", tr.Count(), tr.nodes)
	}
}

func BenchmarkTrieMatch100k(b *testing.B) {
	tr, sessions := build100k()
	var m Matches[*benchSession]
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		tr.Match(topic100k, sessions[9], nil, &m)
	}
	b.ReportMetric(float64(len(m.Deliveries)), "deliveries")
}

func BenchmarkTrieMatch100kParallel(b *testing.B) {
	tr, sessions := build100k()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var m Matches[*benchSession]
		for pb.Next() {
			m.Reset()
			tr.Match(topic100k, sessions[9], nil, &m)
		}
	})
}

func BenchmarkTrieMatchFanOut1000(b *testing.B) {
	tr := NewTrie[*benchSession](TrieOptions{})
	for i := range 1000 {
		tr.Add(Subscription[*benchSession]{Subscriber: &benchSession{id: i}, Filter: "fan/out", QoS: 1, ID: uint32(i + 1)})
	}
	var m Matches[*benchSession]
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		tr.Match("fan/out", nil, nil, &m)
	}
	b.ReportMetric(float64(len(m.Deliveries)), "deliveries")
}

func BenchmarkTrieAdd(b *testing.B) {
	filters := make([]string, 1<<16)
	for i := range filters {
		filters[i] = fmt.Sprintf("dev/%d/+/sensor%d/#", i%1000, i)
	}
	sessions := make([]*benchSession, 64)
	for i := range sessions {
		sessions[i] = &benchSession{id: i}
	}
	tr := NewTrie[*benchSession](TrieOptions{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// New subscriptions until every session holds every filter, then
		// replacements.
		tr.Add(Subscription[*benchSession]{Subscriber: sessions[i/len(filters)%len(sessions)], Filter: filters[i%len(filters)], QoS: 1})
		i++
	}
}
