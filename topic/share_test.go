package topic

import (
	"fmt"
	"testing"
)

// TestParseShare: "$share/{ShareName}/{filter}" with a non-empty ShareName
// [MQTT-4.8.2-1] free of '/', '+' and '#' and followed by '/' and a filter
// [MQTT-4.8.2-2].
func TestParseShare(t *testing.T) {
	tests := []struct {
		filter, group, inner string
		ok                   bool
	}{
		{"$share/g/a/b", "g", "a/b", true},
		{"$share/g/#", "g", "#", true},
		{"$share/group-1/+/x", "group-1", "+/x", true},
		{"$share/g//", "g", "/", true},
		{"$share/g/$SYS/#", "g", "$SYS/#", true},
		{"$share//a", "", "", false},   // empty ShareName [MQTT-4.8.2-1]
		{"$share/g", "", "", false},    // no filter [MQTT-4.8.2-2]
		{"$share/g/", "", "", false},   // empty filter [MQTT-4.8.2-2]
		{"$share/", "", "", false},     // [MQTT-4.8.2-1]
		{"$share/g+/a", "", "", false}, // [MQTT-4.8.2-2]
		{"$share/#/a", "", "", false},  // [MQTT-4.8.2-2]
		{"$share", "", "", false},
		{"$SHARE/g/a", "", "", false}, // byte-exact
		{"a/$share/g/a", "", "", false},
		{"$queue/a", "", "", false},
	}
	for _, tc := range tests {
		g, in, ok := ParseShare(tc.filter)
		if g != tc.group || in != tc.inner || ok != tc.ok {
			t.Errorf("ParseShare(%q) = %q, %q, %v; want %q, %q, %v", tc.filter, g, in, ok, tc.group, tc.inner, tc.ok)
		}
	}
}

func addShared(tr *Trie[string], s, group, inner string, qos byte, id uint32) {
	tr.Add(Subscription[string]{Subscriber: s, Filter: "$share/" + group + "/" + inner, Share: group, QoS: qos, ID: id})
}

// countShared matches topic n times and counts, per subscriber, the shared
// deliveries of group; each Match must yield exactly one for the group.
func countShared(t *testing.T, tr *Trie[string], topic, group string, n int, eligible func(string) bool) map[string]int {
	t.Helper()
	counts := map[string]int{}
	var m Matches[string]
	for range n {
		m.Reset()
		tr.Match(topic, "", eligible, &m)
		got := 0
		for _, d := range m.Deliveries {
			if d.Share == group {
				counts[d.Subscriber]++
				got++
			}
		}
		if got != 1 {
			t.Fatalf("group %q: %d deliveries for one message, want 1: %+v", group, got, m.Deliveries)
		}
	}
	return counts
}

// TestShareRoundRobin: each message goes to one member of the group, in
// turn.
func TestShareRoundRobin(t *testing.T) {
	tr := NewTrie[string](TrieOptions{ShareStrategy: RoundRobin})
	for _, s := range []string{"A", "B", "C"} {
		addShared(tr, s, "g", "a/+", 1, 0)
	}
	counts := countShared(t, tr, "a/x", "g", 300, nil)
	for _, s := range []string{"A", "B", "C"} {
		if counts[s] != 100 {
			t.Errorf("round robin over 300 messages: %v, want 100 each", counts)
			break
		}
	}
}

// TestShareEligible: members the broker reports as not eligible (offline,
// window full) are passed over, and the others share evenly; if none is
// eligible one is picked anyway.
func TestShareEligible(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	for _, s := range []string{"A", "B", "C"} {
		addShared(tr, s, "g", "a/#", 1, 0)
	}
	counts := countShared(t, tr, "a/x", "g", 300, func(s string) bool { return s != "B" })
	if counts["B"] != 0 || counts["A"] != 150 || counts["C"] != 150 {
		t.Errorf("B not eligible: %v, want A and C 150 each", counts)
	}
	counts = countShared(t, tr, "a/x", "g", 300, func(string) bool { return false })
	if counts["A"] != 100 || counts["B"] != 100 || counts["C"] != 100 {
		t.Errorf("none eligible: %v, want still one each in turn", counts)
	}
}

// TestShareRandom: each message still goes to exactly one member, and every
// member gets some.
func TestShareRandom(t *testing.T) {
	tr := NewTrie[string](TrieOptions{ShareStrategy: Random})
	for _, s := range []string{"A", "B", "C"} {
		addShared(tr, s, "g", "a", 0, 0)
	}
	counts := countShared(t, tr, "a", "g", 3000, nil)
	for _, s := range []string{"A", "B", "C"} {
		if counts[s] < 700 {
			t.Errorf("random over 3000 messages: %v", counts)
			break
		}
	}
	counts = countShared(t, tr, "a", "g", 300, func(s string) bool { return s == "C" })
	if counts["C"] != 300 {
		t.Errorf("random with only C eligible: %v", counts)
	}
}

// TestShareGroups: two groups on the same filter each get one copy; a group
// on another filter that also matches gets its own; a member's delivery
// carries its own granted QoS [MQTT-4.8.2-3] and identifier, apart from its
// subscriber's non-shared delivery.
func TestShareGroups(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	addShared(tr, "A", "g1", "a/+", 2, 11)
	addShared(tr, "B", "g2", "a/+", 1, 0)
	addShared(tr, "A", "g3", "a/#", 0, 33)
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "a/+", QoS: 0, ID: 44})

	ds := matchAll(tr, "a/b", "")
	want := map[string]Delivery[string]{
		"":   {Subscriber: "A", QoS: 0, IDs: []uint32{44}},
		"g1": {Subscriber: "A", QoS: 2, IDs: []uint32{11}},
		"g2": {Subscriber: "B", QoS: 1},
		"g3": {Subscriber: "A", QoS: 0, IDs: []uint32{33}},
	}
	if len(ds) != len(want) {
		t.Fatalf("deliveries %+v, want one per group plus A's own", ds)
	}
	for _, d := range ds {
		w, ok := want[d.Share]
		if !ok || d.Subscriber != w.Subscriber || d.QoS != w.QoS || fmt.Sprint(d.IDs) != fmt.Sprint(w.IDs) {
			t.Errorf("delivery %+v, want %+v", d, w)
		}
		delete(want, d.Share)
	}
}

// TestShareDollar: the inner filter decides the '$' rule [MQTT-4.7.2-1].
func TestShareDollar(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	addShared(tr, "A", "g", "#", 0, 0)
	addShared(tr, "B", "g", "$SYS/#", 0, 0)
	if ds := matchAll(tr, "$SYS/x", ""); len(ds) != 1 || ds[0].Subscriber != "B" {
		t.Errorf("$SYS/x: %+v, want B only", ds)
	}
}

// TestShareNoLocal: No Local on a shared subscription is a Protocol Error
// [MQTT-3.8.3-4] (v5), which the broker rejects; should one reach the trie,
// the member still never receives its own message.
func TestShareNoLocal(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "A", Filter: "$share/g/a", Share: "g", NoLocal: true})
	tr.Add(Subscription[string]{Subscriber: "B", Filter: "$share/g/a", Share: "g"})
	for range 10 {
		if ds := matchAll(tr, "a", "A"); len(ds) != 1 || ds[0].Subscriber != "B" {
			t.Fatalf("A publishes: %+v, want B", ds)
		}
	}
	tr.Remove("B", "$share/g/a")
	if ds := matchAll(tr, "a", "A"); len(ds) != 0 {
		t.Fatalf("A publishes, A alone in group: %+v, want none", ds)
	}
}

// TestShareRemoveMember: a member that leaves stops receiving, and the group
// goes when its last member does.
func TestShareRemoveMember(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	for _, s := range []string{"A", "B", "C"} {
		addShared(tr, s, "g", "a", 0, 0)
	}
	if !tr.Remove("B", "$share/g/a") {
		t.Fatal("Remove B failed")
	}
	if counts := countShared(t, tr, "a", "g", 100, nil); counts["A"] != 50 || counts["C"] != 50 {
		t.Errorf("after B left: %v", counts)
	}
	tr.Remove("A", "$share/g/a")
	tr.Remove("C", "$share/g/a")
	if tr.Count() != 0 || tr.nodes != 0 {
		t.Errorf("Count %d nodes %d", tr.Count(), tr.nodes)
	}
}

func TestAddShareMismatchPanics(t *testing.T) {
	for _, sub := range []Subscription[string]{
		{Subscriber: "A", Filter: "a/b", Share: "g"},
		{Subscriber: "A", Filter: "$share/h/a", Share: "g"},
		{Subscriber: "A", Filter: "$share//a", Share: "g"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%+v) did not panic", sub)
				}
			}()
			NewTrie[string](TrieOptions{}).Add(sub)
		}()
	}
}

func TestShareStrategyString(t *testing.T) {
	for s, want := range map[ShareStrategy]string{RoundRobin: "round-robin", Random: "random", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// TestMatchEligiblePanicUnlocks: a panic in eligible does not leave the trie
// locked.
func TestMatchEligiblePanicUnlocks(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	addShared(tr, "A", "g", "a", 0, 0)
	func() {
		defer func() { _ = recover() }()
		var m Matches[string]
		tr.Match("a", "", func(string) bool { panic("boom") }, &m)
	}()
	tr.Add(Subscription[string]{Subscriber: "B", Filter: "a"}) // would deadlock
	if tr.Count() != 2 {
		t.Fatalf("Count %d", tr.Count())
	}
}
