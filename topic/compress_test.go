package topic

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// deepLevels builds up to 8 levels, so that long chains without branches
// form, and are split and pruned as filters come and go.
func deepLevels(r *rand.Rand, wild bool) string {
	alphabet := []string{"a", "b", "", "$s", "c", "dd"}
	if wild {
		alphabet = append(alphabet, "+", "#")
	}
	n := 1 + r.IntN(8)
	levels := make([]string, 0, n)
	for i := range n {
		l := alphabet[r.IntN(len(alphabet))]
		if l == "#" && i != n-1 {
			l = "+"
		}
		if i == 0 && r.IntN(2) == 0 {
			l = "p" // a common prefix, split at many depths
		}
		levels = append(levels, l)
	}
	return strings.Join(levels, "/")
}

// Chains of levels held by one node are split where a filter leaves them
// and matched level by level, also after removals (issue 16, point 2).
func TestTrieCompressedRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		tr := NewTrie[string](TrieOptions{})
		filters := map[string]bool{}
		for range 40 + round*10 {
			f := deepLevels(r, true)
			filters[f] = true
			tr.Add(Subscription[string]{Subscriber: f, Filter: f})
		}
		check := func() {
			var m Matches[string]
			for range 300 {
				topic := deepLevels(r, false)
				m.Reset()
				tr.Match(topic, "", nil, &m)
				checkAgainstRef(t, topic, filters, &m)
			}
			for f := range filters {
				if tr.find(f) == nil {
					t.Fatalf("filter %q not found", f)
				}
			}
		}
		check()
		for f := range filters {
			if r.IntN(2) == 0 {
				if !tr.Remove(f, f) {
					t.Fatalf("Remove(%q) found nothing", f)
				}
				delete(filters, f)
			}
		}
		check()
		for f := range filters {
			tr.Remove(f, f)
		}
		if tr.nodes != 0 || !tr.root.empty() {
			t.Fatalf("round %d: %d nodes left", round, tr.nodes)
		}
	}
}

func TestRetainedCompressedRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for round := range 20 {
		rt := NewRetained[string]()
		topics := map[string]bool{}
		for range 40 + round*10 {
			topic := deepLevels(r, false)
			topics[topic] = true
			rt.Set(topic, topic)
		}
		check := func() {
			for range 300 {
				f := deepLevels(r, true)
				var got, want []string
				rt.Match(f, func(topic, v string) bool {
					if v != topic {
						t.Errorf("topic %q holds %q", topic, v)
					}
					got = append(got, topic)
					return true
				})
				for topic := range topics {
					if matchRef(f, topic) {
						want = append(want, topic)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("filter %q: matched %q, want %q", f, got, want)
				}
			}
			for topic := range topics {
				if v, ok := rt.Get(topic); !ok || v != topic {
					t.Fatalf("Get(%q) = %q, %v", topic, v, ok)
				}
			}
			if rt.Len() != len(topics) {
				t.Fatalf("Len %d, want %d", rt.Len(), len(topics))
			}
		}
		check()
		for topic := range topics {
			if r.IntN(2) == 0 {
				if !rt.Delete(topic) {
					t.Fatalf("Delete(%q) found nothing", topic)
				}
				delete(topics, topic)
			}
		}
		check()
		for topic := range topics {
			rt.Delete(topic)
		}
		if rt.nodes != 0 {
			t.Fatalf("round %d: %d nodes left", round, rt.nodes)
		}
	}
}

// A filter or topic that shares no levels with others costs one node, not
// one per level.
func TestDeepChainOneNode(t *testing.T) {
	tr := NewTrie[int](TrieOptions{})
	rt := NewRetained[int]()
	deep := "d" + strings.Repeat("/x", 199)
	for i := range 100 {
		f := string(rune('A'+i%26)) + strings.Repeat("/", i/26) + deep
		tr.Add(Subscription[int]{Subscriber: i, Filter: f})
		rt.Set(f, i)
	}
	if tr.nodes > 200 || rt.nodes > 200 {
		t.Fatalf("100 deep filters: %d trie nodes, %d retained nodes; want a few per filter", tr.nodes, rt.nodes)
	}
}
