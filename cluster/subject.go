package cluster

import (
	"errors"
	"strings"
)

// The mapping of MQTT topics to NATS subjects. MQTT separates levels with
// '/', allows any UTF-8 but U+0000 in a level, and allows empty levels; NATS
// separates tokens with '.', gives '*' and '>' a meaning, and allows
// neither empty tokens nor spaces. Each MQTT level becomes one NATS token:
// the bytes A-Z a-z 0-9 '-' '_' stay as they are, every other byte
// (also '=' itself, '.', '*', '>', '$', space, each byte of a multi-byte
// UTF-8 character) is written "=HH" in upper-case hexadecimal, and an empty
// level is the token "=". The mapping is one to one, so it can be reversed,
// and a token only ever holds characters that NATS subjects and JetStream
// KV keys both allow. In filters, '+' becomes '*' and '#' becomes '>', so
// NATS matches what MQTT would match, save that the MQTT rule that
// wildcards at the first level do not match topics beginning with '$'
// [MQTT-4.7.2-1] is left to the broker's trie, which sees every delivery.

const hexDigits = "0123456789ABCDEF"

func plain(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// appendLevel appends the token for one MQTT level.
func appendLevel(dst []byte, level string) []byte {
	if level == "" {
		return append(dst, '=')
	}
	for i := 0; i < len(level); i++ {
		b := level[i]
		if plain(b) {
			dst = append(dst, b)
			continue
		}
		dst = append(dst, '=', hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// TopicSubject returns the NATS subject tokens of an MQTT topic name,
// joined by '.'.
func TopicSubject(topic string) string {
	dst := make([]byte, 0, len(topic)+8)
	for i := 0; ; i++ {
		j := strings.IndexByte(topic, '/')
		if i > 0 {
			dst = append(dst, '.')
		}
		if j < 0 {
			dst = appendLevel(dst, topic)
			break
		}
		dst = appendLevel(dst, topic[:j])
		topic = topic[j+1:]
	}
	return string(dst)
}

// FilterSubject returns the NATS subject of an MQTT topic filter: as
// TopicSubject, with '+' levels as '*' and a '#' level as '>'. A "#" that
// follows a level also matches the parent level in MQTT
// [MQTT-4.7.1-2]; NATS ">" does not, so FilterSubject returns a second
// subject for the parent ("" when none is needed).
func FilterSubject(filter string) (subject, parent string) {
	levels := strings.Split(filter, "/")
	dst := make([]byte, 0, len(filter)+8)
	for i, l := range levels {
		if i > 0 {
			dst = append(dst, '.')
		}
		switch l {
		case "+":
			dst = append(dst, '*')
		case "#":
			if i > 0 {
				parent = string(dst[:len(dst)-1])
			}
			dst = append(dst, '>')
		default:
			dst = appendLevel(dst, l)
		}
	}
	return string(dst), parent
}

var errSubject = errors.New("cluster: not a subject made by TopicSubject")

// SubjectTopic reverses TopicSubject.
func SubjectTopic(subject string) (string, error) {
	dst := make([]byte, 0, len(subject))
	tokenStart := true
	for i := 0; i < len(subject); i++ {
		b := subject[i]
		switch {
		case b == '.':
			if tokenStart {
				return "", errSubject // an empty token
			}
			dst = append(dst, '/')
			tokenStart = true
			continue
		case b == '=':
			if i+1 == len(subject) || subject[i+1] == '.' {
				if !tokenStart {
					return "", errSubject
				}
				tokenStart = false
				continue // an empty level
			}
			if i+2 >= len(subject) {
				return "", errSubject
			}
			h, l := unhex(subject[i+1]), unhex(subject[i+2])
			if h < 0 || l < 0 {
				return "", errSubject
			}
			v := byte(h<<4 | l)
			if plain(v) || v == '/' {
				return "", errSubject // not canonical, or a separator inside a level: the mapping is one to one
			}
			dst = append(dst, v)
			i += 2
		case plain(b):
			dst = append(dst, b)
		default:
			return "", errSubject
		}
		tokenStart = false
	}
	if tokenStart {
		return "", errSubject // empty subject or a trailing '.'
	}
	return string(dst), nil
}

func unhex(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'A' && b <= 'F':
		return int(b - 'A' + 10)
	}
	return -1
}
