package packet

import "strings"

// validName reports whether s can be a Topic Name: at least one byte
// [MQTT-4.7.3-1], no wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1]. UTF-8 and U+0000
// were checked when the string was read.
func validName(s string) bool {
	return len(s) > 0 && strings.IndexAny(s, "+#") < 0
}

// ValidTopicName checks a Topic Name fully: UTF-8 rules, length, wildcards.
func ValidTopicName(s string) error {
	if err := ValidString(s); err != nil {
		return err
	}
	if len(s) == 0 {
		return ErrTopicEmpty
	}
	if strings.IndexAny(s, "+#") >= 0 {
		return ErrTopicWildcard
	}
	return nil
}

// ShareGroup splits a shared subscription filter "$share/{name}/{filter}"
// into its share name and inner filter; ok is false when filter does not
// start with "$share/".
func ShareGroup(filter string) (name, inner string, ok bool) {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return "", "", false
	}
	name, inner, _ = strings.Cut(rest, "/")
	return name, inner, true
}

// ValidTopicFilter checks a Topic Filter: UTF-8 rules, at least one byte
// [MQTT-4.7.3-1], '#' alone and last [MQTT-4.7.1-2], '+' filling its level
// [MQTT-4.7.1-3], and a shared filter's form [MQTT-4.8.2-1] [MQTT-4.8.2-2].
func ValidTopicFilter(s string) error {
	if err := ValidString(s); err != nil {
		return err
	}
	return validFilter(s)
}

func validFilter(s string) error {
	if name, inner, ok := ShareGroup(s); ok {
		if name == "" || strings.IndexAny(name, "+#") >= 0 || len(s) == len("$share/")+len(name) {
			return ErrShareInvalid
		}
		if inner == "" {
			return ErrShareInvalid
		}
		s = inner
	}
	if len(s) == 0 {
		return ErrFilterInvalid
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '#':
			if i != len(s)-1 || (i > 0 && s[i-1] != '/') {
				return ErrFilterInvalid
			}
		case '+':
			if (i > 0 && s[i-1] != '/') || (i < len(s)-1 && s[i+1] != '/') {
				return ErrFilterInvalid
			}
		}
	}
	return nil
}
