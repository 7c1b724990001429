package webhook

import "strings"

// matchFilter reports whether topic name matches filter: '+' one level,
// '#' the rest and the parent level (section 4.7.1.2); names starting with
// '$' are not matched by a leading wildcard [MQTT-4.7.2-1].
func matchFilter(filter, name string) bool {
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
			// "a/#" matches "a" as well (section 4.7.1.2).
			return fmore == nmore || (fmore && frest == "#")
		}
		filter, name = frest, nrest
	}
}
