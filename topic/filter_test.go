package topic

import (
	"math/rand/v2"
	"testing"
)

func TestMatchFilter(t *testing.T) {
	for _, c := range []struct {
		filter, name string
		want         bool
	}{
		{"#", "a/b", true}, {"a/#", "a", true}, {"a/#", "a/b/c", true}, {"a/+", "a/b", true},
		{"a/+", "a/b/c", false}, {"a/+", "a", false}, {"+/+", "a/b", true}, {"a/b", "a/b", true},
		{"a/b", "a/c", false}, {"+", "", true}, {"a//b", "a//b", true}, {"a/+/c", "a//c", true},
		{"#", "$SYS/x", false}, {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true}, // [MQTT-4.7.2-1]
	} {
		if got := MatchFilter(c.filter, c.name); got != c.want {
			t.Errorf("MatchFilter(%q, %q) = %v, want %v", c.filter, c.name, got, c.want)
		}
	}
}

// MatchFilter agrees with the reference matcher the trie is tested against.
func TestMatchFilterRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 20000 {
		f, n := randomLevels(r, true), randomLevels(r, false)
		if got, want := MatchFilter(f, n), matchRef(f, n); got != want {
			t.Fatalf("MatchFilter(%q, %q) = %v, reference %v", f, n, got, want)
		}
	}
}
