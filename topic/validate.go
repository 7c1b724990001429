package topic

// MaxLen is the longest topic name or filter, in bytes [MQTT-4.7.3-3].
const MaxLen = 65535

// ValidName reports whether name can be used as a PUBLISH topic name: one to
// MaxLen bytes, no U+0000 and no wildcard. UTF-8 well-formedness is the
// packet decoder's check [MQTT-1.5.4-1].
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxLen { // [MQTT-4.7.3-1] [MQTT-4.7.3-3]
		return false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case 0: // [MQTT-4.7.3-2]
			return false
		case '+', '#': // [MQTT-3.3.2-2] [MQTT-4.7.1-1] (v3.1.1) [MQTT-4.7.0-1] (v5)
			return false
		}
	}
	return true
}

// ValidFilter reports whether filter is a well-formed topic filter: one to
// MaxLen bytes, no U+0000, '+' filling a whole level and '#' filling the last
// one. It treats a "$share/" prefix as ordinary levels; a shared filter is
// checked by [ParseShare] and then ValidFilter on its inner filter.
func ValidFilter(filter string) bool {
	n := len(filter)
	if n == 0 || n > MaxLen { // [MQTT-4.7.3-1] [MQTT-4.7.3-3]
		return false
	}
	for i := 0; i < n; i++ {
		switch filter[i] {
		case 0: // [MQTT-4.7.3-2]
			return false
		case '+': // [MQTT-4.7.1-3] (v3.1.1) [MQTT-4.7.1-2] (v5)
			if (i > 0 && filter[i-1] != '/') || (i+1 < n && filter[i+1] != '/') {
				return false
			}
		case '#': // [MQTT-4.7.1-2] (v3.1.1) [MQTT-4.7.1-1] (v5)
			if (i > 0 && filter[i-1] != '/') || i != n-1 {
				return false
			}
		}
	}
	return true
}
