package topic

import "strings"

// MatchFilter reports whether the topic name matches filter without a trie:
// '+' one level, '#' the rest and the parent level (section 4.7.1.2); a
// name starting with '$' is not matched by a leading wildcard
// [MQTT-4.7.2-1]. For a few filters checked outside the routing path
// (traces, webhook filters); routing uses Trie.
func MatchFilter(filter, name string) bool {
	if name != "" && name[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		n, nrest, nmore := strings.Cut(name, "/")
		if f != "+" && f != n {
			return false
		}
		if !fmore || !nmore {
			return fmore == nmore || (fmore && frest == "#")
		}
		filter, name = frest, nrest
	}
}
