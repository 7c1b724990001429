package auth

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/topic"
)

func coversStr(rule, s string) bool {
	levels, _, _ := compileFilter(rule, false)
	return covers(levels, s, &subst{})
}

func TestCovers(t *testing.T) {
	tests := []struct {
		rule, s string
		want    bool
	}{
		// names: ordinary matching
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"#", "a/b", true},
		{"+/+", "/x", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"A", "a", false},
		// '$' names [MQTT-4.7.2-1]
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"+/#", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+", "$SYS/x", true},
		{"a/+", "a/$x", true},
		// filters: coverage
		{"a/#", "a/+/b", true},
		{"a/#", "a/#", true},
		{"a/#", "a/+", true},
		{"a/#", "#", false},
		{"a/+", "a/#", false},
		{"a/+", "a/+", true},
		{"a/+", "a/+/b", false},
		{"a/b", "a/+", false},
		{"+", "+", true},
		{"+", "#", false},
		{"#", "#", true},
		{"#", "+/x/#", true},
		{"+/#", "#", true},      // both match every name not starting with '$'
		{"a/+/#", "a/#", false}, // "a/#" matches "a"
		{"+/x", "+/x", true},
		{"+/x", "+/+", false},
		{"a/+/c", "a/+/c", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/#", false},
		{"#", "$SYS/#", false},
		{"#", "$SYS/+", false},
		{"+/#", "$SYS/#", false},
		{"$SYS/#", "$SYS/#", true},
		{"$SYS/#", "$SYS/+/x", true},
		{"$SYS/+", "$SYS/#", false},
	}
	for _, tt := range tests {
		if got := coversStr(tt.rule, tt.s); got != tt.want {
			t.Errorf("covers(%q, %q) = %v; want %v", tt.rule, tt.s, got, tt.want)
		}
		if !strings.ContainsAny(tt.s, "+#") {
			if got, want := coversStr(tt.rule, tt.s), trieMatches(tt.rule, tt.s); got != want {
				t.Errorf("covers(%q, %q) = %v; topic.Trie says %v", tt.rule, tt.s, got, want)
			}
		}
		if got, want := coversStr(tt.rule, tt.s), coversOracle(tt.rule, tt.s); got != want {
			t.Errorf("covers(%q, %q) = %v; oracle says %v", tt.rule, tt.s, got, want)
		}
	}
}

func TestTemplateMatch(t *testing.T) {
	v := &subst{username: "alice", clientID: "7"}
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"users/%u/#", "users/alice/x", true},
		{"users/%u/#", "users/alice", true},
		{"users/%u/#", "users/bob/x", false},
		{"users/%u/#", "users/+/x", false},
		{"users/%u/#", "users/#", false},
		{"users/%u/#", "users/alice/#", true},
		{"dev-%c-in/x", "dev-7-in/x", true},
		{"dev-%c-in/x", "dev-77-in/x", false},
		{"dev-%c-in/x", "dev--in/x", false},
		{"%u/%c", "alice/7", true},
		{"%u%c", "alice7", true},
		{"%u%c", "alice", false},
		{"100%/%x/%u", "100%/%x/alice", true}, // only %u and %c are substituted
		{"%%u", "%alice", true},
		{"a%", "a%", true},
	}
	for _, tt := range tests {
		levels, _, _ := compileFilter(tt.pattern, true)
		if got := covers(levels, tt.s, v); got != tt.want {
			t.Errorf("covers(pattern %q, %q) = %v; want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
	// A topic rule does not substitute.
	levels, _, _ := compileFilter("users/%u", false)
	if covers(levels, "users/alice", v) || !covers(levels, "users/%u", v) {
		t.Error("topic rule substituted %u")
	}
}

// trieMatches asks the topic package whether filter matches name.
func trieMatches(filter, name string) bool {
	tr := topic.NewTrie[int](topic.TrieOptions{})
	tr.Add(topic.Subscription[int]{Subscriber: 1, Filter: filter})
	var m topic.Matches[int]
	tr.Match(name, 0, nil, &m)
	return len(m.Deliveries) > 0
}

// coversOracle decides coverage by brute force: it expands s's wildcards
// into sample names (a level no rule contains; zero to two levels for "#") and asks topic.Trie whether rule
// matches each. Sound because a name level that the rule cannot name
// literally is matched only by its wildcards.
func coversOracle(rule, s string) bool {
	for _, name := range expand(strings.Split(s, "/")) {
		if !topic.ValidName(name) {
			continue
		}
		if !trieMatches(rule, name) {
			return false
		}
	}
	return true
}

const fresh = "\u2603fresh" // no test rule contains it

func expand(levels []string) []string {
	var out []string
	for _, name := range expandLevels(levels) {
		if len(name) > 0 {
			out = append(out, strings.Join(name, "/"))
		}
	}
	return out
}

// expandLevels returns the names s can match, as lists of levels.
func expandLevels(levels []string) [][]string {
	if len(levels) == 0 {
		return [][]string{{}}
	}
	var heads [][]string
	switch levels[0] {
	case "+":
		heads = [][]string{{fresh}} // at depth 0, s itself never matches '$' names
	case "#":
		heads = [][]string{{}, {fresh}, {fresh, fresh}}
	default:
		heads = [][]string{{levels[0]}}
	}
	var out [][]string
	for _, h := range heads {
		for _, tail := range expandLevels(levels[1:]) {
			out = append(out, append(append([]string{}, h...), tail...))
		}
	}
	return out
}
