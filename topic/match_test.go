package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// matchCases is shared by the Trie and Retained tests: a filter, a topic
// name, and whether the one matches the other.
var matchCases = []struct {
	filter, topic string
	want          bool
}{
	// exact
	{"a", "a", true},
	{"a/b", "a/b", true},
	{"a/b", "a/c", false},
	{"a/b", "a/b/c", false},
	{"a/b/c", "a/b", false},
	{"a/b", "a", false},
	{"sport/tennis/player1", "sport/tennis/player1", true},

	// "+" fills exactly one level, empty included
	{"+", "a", true},
	{"+", "a/b", false},
	{"+", "/a", false},
	{"+", "/", false},
	{"a/+", "a/b", true},
	{"a/+", "a/", true},
	{"a/+", "a", false},
	{"a/+", "a/b/c", false},
	{"+/+", "a/b", true},
	{"+/+", "/a", true},
	{"+/+", "a/", true},
	{"+/+", "/", true},
	{"+/+", "a", false},
	{"+/+", "a/b/c", false},
	{"+/b/+", "a/b/c", true},
	{"a/+/c", "a/b/c", true},
	{"a/+/c", "a//c", true},
	{"a/+/c", "a/b/d", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},

	// "#" matches the parent level and everything below it
	{"#", "a", true},
	{"#", "a/b/c", true},
	{"#", "/", true},
	{"#", "/a", true},
	{"a/#", "a", true},
	{"a/#", "a/", true},
	{"a/#", "a/b", true},
	{"a/#", "a/b/c", true},
	{"a/#", "ab", false},
	{"a/#", "b/a", false},
	{"a/b/#", "a", false},
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/player1/#", "sport/tennis/player2", false},

	// "+" and "#" together
	{"a/+/#", "a/b", true},
	{"a/+/#", "a/b/c/d", true},
	{"a/+/#", "a/", true},
	{"a/+/#", "a//", true},
	{"a/+/#", "a", false},
	{"a/+/#", "b/c", false},
	{"+/#", "a", true},
	{"+/+/#", "a", false},

	// empty levels are real levels
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
	{"a/b", "a//b", false},
	{"/a", "/a", true},
	{"/a", "a", false},
	{"a", "/a", false},
	{"+/a", "/a", true},
	{"/+", "/a", true},
	{"/+", "/", true},
	{"/", "/", true},
	{"//", "/", false},
	{"a/", "a", false},

	// [MQTT-4.7.2-1] a leading wildcard never matches a name starting with '$'
	{"#", "$SYS", false},
	{"#", "$SYS/broker/uptime", false},
	{"#", "$", false},
	{"+", "$SYS", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+/#", "$SYS/x", false},
	{"$SYS/#", "$SYS", true},
	{"$SYS/#", "$SYS/x", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/x", "$SYS/x", true},
	{"$share/g/a", "$share/g/a", true},
	{"a/#", "a/$x", true},
	{"a/+", "a/$x", true},
	{"#", "x$", true},

	// [MQTT-4.7.3-4] no normalisation: bytes must agree
	{"A/b", "a/b", false},
	{"a/b ", "a/b", false},
	{"caf\u00e9", "cafe\u0301", false},
	{"caf\u00e9", "caf\u00e9", true},
	{"\ufeffa", "a", false},
}

// matchRef is a straightforward matcher the indexes are checked against.
func matchRef(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false // [MQTT-4.7.2-1]
	}
	f, n := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(n) || (l != "+" && l != n[i]) {
			return false
		}
	}
	return len(f) == len(n)
}

func TestMatchRef(t *testing.T) {
	for _, c := range matchCases {
		if got := matchRef(c.filter, c.topic); got != c.want {
			t.Errorf("matchRef(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

// TestTrieMatchTable covers "+", "#", '$' names [MQTT-4.7.2-1], empty
// levels and byte-exact comparison [MQTT-4.7.3-4].
func TestTrieMatchTable(t *testing.T) {
	for _, c := range matchCases {
		if !ValidFilter(c.filter) || !ValidName(c.topic) {
			t.Fatalf("bad case %q %q", c.filter, c.topic)
		}
		tr := NewTrie[string](TrieOptions{})
		tr.Add(Subscription[string]{Subscriber: "c", Filter: c.filter})
		var m Matches[string]
		tr.Match(c.topic, "", nil, &m)
		if got := len(m.Deliveries) == 1; got != c.want {
			t.Errorf("filter %q, topic %q: match %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

// TestTrieMatchAllFilters puts every filter of the table in one trie, each
// for its own subscriber, and checks every topic against the reference.
func TestTrieMatchAllFilters(t *testing.T) {
	tr := NewTrie[string](TrieOptions{})
	filters := map[string]bool{}
	topics := map[string]bool{}
	for _, c := range matchCases {
		filters[c.filter] = true
		topics[c.topic] = true
	}
	for f := range filters {
		tr.Add(Subscription[string]{Subscriber: f, Filter: f})
	}
	var m Matches[string]
	for topic := range topics {
		m.Reset()
		tr.Match(topic, "", nil, &m)
		checkAgainstRef(t, topic, filters, &m)
	}
}

func checkAgainstRef(t *testing.T, topic string, filters map[string]bool, m *Matches[string]) {
	t.Helper()
	var got, want []string
	for _, d := range m.Deliveries {
		got = append(got, d.Subscriber)
	}
	for f := range filters {
		if matchRef(f, topic) {
			want = append(want, f)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("topic %q: matched %q, want %q", topic, got, want)
	}
}

// randomLevels builds n levels from a small alphabet, so that random filters
// and names collide often.
func randomLevels(r *rand.Rand, wild bool) string {
	alphabet := []string{"a", "b", "", "$s", "c"}
	if wild {
		alphabet = append(alphabet, "+", "+", "#")
	}
	n := 1 + r.IntN(4)
	levels := make([]string, 0, n)
	for i := range n {
		l := alphabet[r.IntN(len(alphabet))]
		if l == "#" && i != n-1 {
			l = "+"
		}
		levels = append(levels, l)
	}
	return strings.Join(levels, "/")
}

func TestTrieMatchRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tr := NewTrie[string](TrieOptions{})
	filters := map[string]bool{}
	for range 300 {
		f := randomLevels(r, true)
		filters[f] = true
		tr.Add(Subscription[string]{Subscriber: f, Filter: f})
	}
	var m Matches[string]
	for range 2000 {
		topic := randomLevels(r, false)
		m.Reset()
		tr.Match(topic, "", nil, &m)
		checkAgainstRef(t, topic, filters, &m)
	}
}

func TestRetainedMatchRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rt := NewRetained[int]()
	topics := map[string]bool{}
	for range 300 {
		topic := randomLevels(r, false)
		topics[topic] = true
		rt.Set(topic, len(topic))
	}
	for range 2000 {
		f := randomLevels(r, true)
		var got, want []string
		rt.Match(f, func(topic string, v int) bool {
			if v != len(topic) {
				t.Errorf("topic %q: value %d", topic, v)
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
			t.Errorf("filter %q: matched %q, want %q", f, got, want)
		}
	}
}

func ExampleTrie_Match() {
	tr := NewTrie[string](TrieOptions{})
	tr.Add(Subscription[string]{Subscriber: "alice", Filter: "dev/+/temp", QoS: 1, ID: 7})
	tr.Add(Subscription[string]{Subscriber: "alice", Filter: "dev/#", QoS: 2})
	tr.Add(Subscription[string]{Subscriber: "bob", Filter: "$share/g/dev/+/temp", Share: "g"})

	var m Matches[string]
	tr.Match("dev/1/temp", "", nil, &m)
	for _, d := range m.Deliveries {
		fmt.Printf("%s qos=%d ids=%v share=%q\n", d.Subscriber, d.QoS, d.IDs, d.Share)
	}
	// Output:
	// alice qos=2 ids=[7] share=""
	// bob qos=0 ids=[] share="g"
}

func ExampleRetained_Match() {
	r := NewRetained[string]()
	r.Set("dev/1/temp", "21.5")
	r.Set("$SYS/uptime", "10")
	r.Match("#", func(topic, v string) bool {
		fmt.Println(topic, v) // "$SYS/uptime" is not matched by "#"
		return true
	})
	// Output:
	// dev/1/temp 21.5
}

// FuzzMatch checks the Trie and the Retained index against the reference
// matcher for any valid filter and name.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.filter, c.topic)
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if !ValidFilter(filter) || !ValidName(topic) {
			return
		}
		want := matchRef(filter, topic)
		tr := NewTrie[int](TrieOptions{})
		tr.Add(Subscription[int]{Subscriber: 1, Filter: filter})
		var m Matches[int]
		tr.Match(topic, 0, nil, &m)
		if got := len(m.Deliveries) == 1; got != want {
			t.Errorf("Trie: filter %q, topic %q: %v, want %v", filter, topic, got, want)
		}
		if !tr.Remove(1, filter) || tr.nodes != 0 {
			t.Errorf("Trie: Remove(%q) left %d nodes", filter, tr.nodes)
		}
		r := NewRetained[int]()
		r.Set(topic, 1)
		got := false
		r.Match(filter, func(string, int) bool { got = true; return true })
		if got != want {
			t.Errorf("Retained: filter %q, topic %q: %v, want %v", filter, topic, got, want)
		}
	})
}
