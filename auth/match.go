package auth

import "strings"

// A compiled ACL topic: the rule's filter split into levels once, at load,
// so that a check walks the asked-for topic without allocating.

type levelKind uint8

const (
	litLevel  levelKind = iota // plain text
	plusLevel                  // "+"
	hashLevel                  // "#", always last
	tmplLevel                  // text with %u or %c (pattern rules only)
)

type level struct {
	kind  levelKind
	text  string     // litLevel
	parts []tmplPart // tmplLevel
}

// tmplPart is a piece of a template level: literal text, or a substitution.
type tmplPart struct {
	lit string
	sub byte // 0 for lit, 'u' for the user name, 'c' for the client ID
}

// compileFilter splits a valid filter into levels. With pattern set, levels
// containing %u or %c become templates, as Mosquitto substitutes them
// anywhere in a pattern (its man page asks that a substitution fill a whole
// level, but its code does not check).
func compileFilter(filter string, pattern bool) (levels []level, usesU, usesC bool) {
	for _, s := range strings.Split(filter, "/") {
		switch {
		case s == "+":
			levels = append(levels, level{kind: plusLevel})
		case s == "#":
			levels = append(levels, level{kind: hashLevel})
		case pattern && (strings.Contains(s, "%u") || strings.Contains(s, "%c")):
			l := level{kind: tmplLevel}
			start := 0
			for i := 0; i+1 < len(s); i++ {
				if s[i] != '%' || (s[i+1] != 'u' && s[i+1] != 'c') {
					continue
				}
				if i > start {
					l.parts = append(l.parts, tmplPart{lit: s[start:i]})
				}
				l.parts = append(l.parts, tmplPart{sub: s[i+1]})
				if s[i+1] == 'u' {
					usesU = true
				} else {
					usesC = true
				}
				i++
				start = i + 1
			}
			if start < len(s) {
				l.parts = append(l.parts, tmplPart{lit: s[start:]})
			}
			levels = append(levels, l)
		default:
			levels = append(levels, level{kind: litLevel, text: s})
		}
	}
	return levels, usesU, usesC
}

// subst holds the values substituted into template levels.
type subst struct {
	username, clientID string
}

// matchTmpl reports whether the topic level s equals the template expanded
// with v. It does not build the expansion.
func (l *level) matchTmpl(s string, v *subst) bool {
	for _, p := range l.parts {
		val := p.lit
		switch p.sub {
		case 'u':
			val = v.username
		case 'c':
			val = v.clientID
		}
		if !strings.HasPrefix(s, val) {
			return false
		}
		s = s[len(val):]
	}
	return s == ""
}

// covers reports whether every topic name matched by s is also matched by
// the rule levels rl. s is a valid topic name or filter; for a name this is
// plain MQTT matching.
//
// Level by level, with r the rule's level and f the level of s:
//   - r "#" covers f and everything after it, and the parent level: "a/#"
//     covers "a", "a/b", "a/+" and "a/#";
//   - r "+" covers any single f but "#": "a/+" covers "a/b" and "a/+", not
//     "a/#" (the one exception: "+/#" covers "#");
//   - literal r covers only the same literal f, never "+" or "#";
//   - a rule whose first level is "+" or "#" does not cover an f starting
//     with '$' at the first level, as such a filter never matches a name
//     starting with '$' [MQTT-4.7.2-1]; "#" does cover "+/x", which cannot
//     match '$' names either.
//
// Template levels (%u, %c) expand to literal text, so they cover only the
// same literal f.
func covers(rl []level, s string, v *subst) bool {
	pos := 0 // start of the current level of s; > len(s) when s is used up
	for i := range rl {
		r := &rl[i]
		if r.kind == hashLevel {
			return i > 0 || s[0] != '$'
		}
		if pos > len(s) {
			return false // s is used up, the rule wants another level
		}
		f, next := nextLevel(s, pos)
		switch r.kind {
		case plusLevel:
			if f == "#" {
				// At the first level, "+/#" covers "#": both match
				// every name not starting with '$'. Deeper, "#" also
				// matches the parent level, which "+" does not.
				return i == 0 && len(rl) == 2 && rl[1].kind == hashLevel
			}
			if i == 0 && len(f) > 0 && f[0] == '$' {
				return false
			}
		case litLevel:
			if f != r.text {
				return false
			}
		case tmplLevel:
			if f == "+" || f == "#" || !r.matchTmpl(f, v) {
				return false
			}
		}
		pos = next
	}
	return pos > len(s)
}

// nextLevel returns the level of s starting at pos and the start of the next
// one, len(s)+1 when it is the last.
func nextLevel(s string, pos int) (string, int) {
	if i := strings.IndexByte(s[pos:], '/'); i >= 0 {
		return s[pos : pos+i], pos + i + 1
	}
	return s[pos:], len(s) + 1
}
