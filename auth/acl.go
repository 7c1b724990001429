package auth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gannet-mqtt/gannet/topic"
)

// ACL is an access control list read from a file in Mosquitto's acl_file
// syntax. It implements Authorizer; once loaded it is never modified, so it
// is safe for concurrent use without locks (a reload builds a new ACL).
//
// File syntax, one directive per line; blank lines and lines whose first
// non-blank character is '#' are comments:
//
//	user NAME                                 following topic lines apply to NAME
//	topic [read|write|readwrite|deny] FILTER  a rule for the current user
//	pattern [read|write|readwrite|deny] FILTER  a rule for every client
//
// Without an access word a rule grants readwrite. FILTER runs to the end of
// the line and may contain spaces; it must be a valid topic filter. topic
// lines before the first user line apply to anonymous clients (no user
// name). In pattern rules %u is replaced by the client's user name and %c by
// its client ID; patterns apply to every client, after its own rules. A
// client that matches no rule is refused.
//
// Decision, for a client asking for access A to topic T:
//
//  1. If a deny rule of the client's section, or a deny pattern, matches T,
//     refuse.
//  2. If a rule of the client's section, then a pattern, in file order,
//     matches T and grants all of A, allow.
//  3. Otherwise refuse.
//
// For a SUBSCRIBE, T is the filter and "matches" means covers: every topic
// name the filter can match must be matched by the rule, so a rule "a/#"
// allows subscribing to "a/+/b" and "a/#", but a rule "a/+" does not allow
// "a/#" (see covers in match.go for the level rules). A deny rule refuses a
// subscription it covers entirely; where it covers only part of it ("deny
// a/secret" against "a/#"), the subscription is allowed and the messages on
// the denied topics are refused when delivery checks Read on their names.
//
// Substitution is safe: %u (%c) never lets a client reach beyond its own
// place. A user name or client ID that contains '+', '#' or '/', starts with
// '$', or (client ID) is empty, never matches a pattern that substitutes it,
// and every deny pattern that substitutes it refuses that client everything.
// A pattern using %u does not apply to anonymous clients.
type ACL struct {
	anon     ruleSet             // topic lines before any user line
	users    map[string]*ruleSet // topic lines after "user NAME"
	patterns ruleSet             // pattern lines

	userFirst bool // see UserRulesFirst
}

// UserRulesFirst returns a copy of a that decides as Mosquitto 2.0's code
// does: the client's own section first (its deny rules, then its grants),
// and only then the patterns (deny patterns, then grant patterns). A
// user's grant then wins over a deny pattern, where a's default order
// (every deny rule before any grant) refuses. A translated mosquitto.conf
// uses it, so that a migration does not change what a client may read.
func (a *ACL) UserRulesFirst() *ACL {
	c := *a
	c.userFirst = true
	return &c
}

type ruleSet struct {
	deny  []rule
	grant []rule // file order
}

type rule struct {
	filter string
	access Access // 0 for deny
	levels []level
	usesU  bool
	usesC  bool
}

// LoadACLFile reads the ACL file at path. Every bad line is reported, each as
// a *ParseError naming path and line number.
func LoadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: acl file: %w", err)
	}
	defer f.Close()
	return ParseACL(path, f)
}

// ParseACL reads an ACL from r; name is used in errors.
func ParseACL(name string, r io.Reader) (*ACL, error) {
	a := &ACL{users: make(map[string]*ruleSet)}
	errs := lineErrors{file: name}
	cur := &a.anon
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		keyword, rest := cutField(line)
		switch keyword {
		case "user":
			if rest == "" {
				errs.add(n, syntaxf("user: missing user name"))
				continue
			}
			rs, ok := a.users[rest]
			if !ok {
				rs = &ruleSet{}
				a.users[rest] = rs
			}
			cur = rs
		case "topic", "pattern":
			if rest == "" {
				errs.add(n, syntaxf("%s: missing topic filter", keyword))
				continue
			}
			access := ReadWrite
			filter := rest
			if word, f := cutField(rest); f != "" {
				filter = f
				switch word {
				case "read":
					access = Read
				case "write":
					access = Write
				case "readwrite":
					access = ReadWrite
				case "deny":
					access = 0
				default:
					errs.add(n, syntaxf("%s: access %q is not read, write, readwrite or deny", keyword, word))
					continue
				}
			}
			if !topic.ValidFilter(filter) {
				errs.add(n, syntaxf("%s: invalid topic filter %q", keyword, filter))
				continue
			}
			r := rule{filter: filter, access: access}
			r.levels, r.usesU, r.usesC = compileFilter(filter, keyword == "pattern")
			set := cur
			if keyword == "pattern" {
				set = &a.patterns
			}
			if access == 0 {
				set.deny = append(set.deny, r)
			} else {
				set.grant = append(set.grant, r)
			}
		default:
			errs.add(n, syntaxf("unknown directive %q (want user, topic or pattern)", keyword))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs.add(n+1, syntaxf("line longer than %d bytes", maxLineLen))
		} else {
			return nil, fmt.Errorf("auth: reading %s: %w", name, err)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return a, nil
}

// cutField splits s, already trimmed, at its first run of blanks.
func cutField(s string) (first, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// Immediate reports true: an ACL decides in memory.
func (a *ACL) Immediate() bool { return true }

// Authorize reports whether c may have access acc to t. It never returns an
// error. It does not allocate.
func (a *ACL) Authorize(_ context.Context, c *Client, acc Access, t string) (bool, error) {
	return a.check(c.Username, c.ClientID, acc, t), nil
}

// check is Authorize without the Client.
func (a *ACL) check(username, clientID string, acc Access, t string) bool {
	if acc == 0 || acc&^ReadWrite != 0 || !topic.ValidFilter(t) {
		return false
	}
	var own *ruleSet
	if username == "" {
		own = &a.anon
	} else {
		own = a.users[username] // nil: no section of its own
	}
	v := subst{username: username, clientID: clientID}
	badU := username != "" && unsafeSubst(username)
	badC := clientID == "" || unsafeSubst(clientID)

	if own != nil {
		for i := range own.deny {
			if covers(own.deny[i].levels, t, &v) {
				return false
			}
		}
		if a.userFirst {
			for i := range own.grant {
				r := &own.grant[i]
				if r.access&acc == acc && covers(r.levels, t, &v) {
					return true
				}
			}
		}
	}
	for i := range a.patterns.deny {
		p := &a.patterns.deny[i]
		if p.usesU && username == "" {
			continue
		}
		if (p.usesU && badU) || (p.usesC && badC) || covers(p.levels, t, &v) {
			return false
		}
	}
	if own != nil {
		for i := range own.grant {
			r := &own.grant[i]
			if r.access&acc == acc && covers(r.levels, t, &v) {
				return true
			}
		}
	}
	for i := range a.patterns.grant {
		p := &a.patterns.grant[i]
		if p.access&acc != acc || (p.usesU && (username == "" || badU)) || (p.usesC && badC) {
			continue
		}
		if covers(p.levels, t, &v) {
			return true
		}
	}
	return false
}

// unsafeSubst reports whether s must not be substituted into a pattern: it
// would add wildcards or levels, or turn the rule into a '$' topic.
func unsafeSubst(s string) bool {
	return strings.ContainsAny(s, "+#/") || (len(s) > 0 && s[0] == '$')
}
