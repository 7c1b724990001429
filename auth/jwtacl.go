package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gannet-mqtt/gannet/topic"
)

// A JWT's ACL claim, in EMQX's format: a list of rules, each
//
//	{"permission": "allow" | "deny",
//	 "action": "publish" | "subscribe" | "all",   // also "pub", "sub"
//	 "topic": "sensors/%u/#",                      // or "topics": [...]
//	 "qos": [0, 1],                                // optional: any QoS
//	 "retain": true | false}                       // optional: publish only
//
// checked in order; the first rule that matches decides. A topic may use
// %u and %c (or ${username} and ${clientid}) for the user name and client
// ID, and "eq " before a topic matches that exact text only (so "eq a/#"
// matches the filter "a/#", not "a/b"). A check no rule matches goes to the
// next authoriser. EMQX's older format, {"pub": [...], "sub": [...],
// "all": [...]}, lists topics granted; everything else is denied.
type jwtACL struct {
	rules    []jwtRule
	denyRest bool // legacy format: nothing matched, refused
}

type jwtRule struct {
	allow  bool
	access Access
	levels []level // the filter; nil when exact
	exact  *level  // an "eq" topic, as one template over the whole text
	usesU  bool
	usesC  bool
	qos    uint8 // bit n set: QoS n matches; 0: any
	retain int8  // -1: any, 0: not retained, 1: retained
}

// maxACLRules bounds how many rules one token may carry.
const maxACLRules = 256

var errBadACL = errors.New("malformed ACL claim")

func aclErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadACL}, a...)...)
}

// parseACLClaim reads an ACL claim decoded from JSON.
func parseACLClaim(raw any) (*jwtACL, error) {
	switch v := raw.(type) {
	case []any:
		if len(v) > maxACLRules {
			return nil, aclErr("%d rules, at most %d", len(v), maxACLRules)
		}
		acl := &jwtACL{}
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, aclErr("rule %d is not an object", i)
			}
			rs, err := parseACLRule(m)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %w", i, err)
			}
			acl.rules = append(acl.rules, rs...)
		}
		return acl, nil
	case map[string]any:
		acl := &jwtACL{denyRest: true}
		for _, k := range []struct {
			key    string
			access Access
		}{{"pub", Write}, {"sub", Read}, {"all", ReadWrite}} {
			list, ok := v[k.key]
			if !ok {
				continue
			}
			topics, err := stringList(list)
			if err != nil {
				return nil, aclErr("%q: %v", k.key, err)
			}
			for _, t := range topics {
				r, err := compileACLTopic(t)
				if err != nil {
					return nil, err
				}
				r.allow, r.access, r.retain = true, k.access, -1
				acl.rules = append(acl.rules, r)
			}
		}
		if len(acl.rules) > maxACLRules {
			return nil, aclErr("%d rules, at most %d", len(acl.rules), maxACLRules)
		}
		return acl, nil
	}
	return nil, aclErr("want a list of rules or an object, got %T", raw)
}

func stringList(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, fmt.Errorf("want a list of topics, got %T", v)
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("topic %v is not a string", e)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseACLRule reads one rule; "topics" makes one rule per topic.
func parseACLRule(m map[string]any) ([]jwtRule, error) {
	var base jwtRule
	switch m["permission"] {
	case "allow":
		base.allow = true
	case "deny":
	default:
		return nil, aclErr("permission %v is not allow or deny", m["permission"])
	}
	switch m["action"] {
	case "publish", "pub":
		base.access = Write
	case "subscribe", "sub":
		base.access = Read
	case "all":
		base.access = ReadWrite
	default:
		return nil, aclErr("action %v is not publish, subscribe or all", m["action"])
	}
	base.retain = -1
	if r, ok := m["retain"]; ok {
		switch r {
		case true:
			base.retain = 1
		case false:
			base.retain = 0
		case "all":
		default:
			return nil, aclErr("retain %v is not true, false or \"all\"", r)
		}
	}
	if q, ok := m["qos"]; ok {
		list, ok := q.([]any)
		if !ok {
			list = []any{q}
		}
		for _, e := range list {
			n, ok := e.(float64)
			if !ok || (n != 0 && n != 1 && n != 2) {
				return nil, aclErr("qos %v is not 0, 1 or 2", e)
			}
			base.qos |= 1 << uint(n)
		}
	}
	var topics []string
	if t, ok := m["topic"]; ok {
		s, ok := t.(string)
		if !ok {
			return nil, aclErr("topic %v is not a string", t)
		}
		topics = append(topics, s)
	}
	if t, ok := m["topics"]; ok {
		l, err := stringList(t)
		if err != nil {
			return nil, aclErr("topics: %v", err)
		}
		topics = append(topics, l...)
	}
	if len(topics) == 0 {
		return nil, aclErr("no topic")
	}
	out := make([]jwtRule, 0, len(topics))
	for _, t := range topics {
		r, err := compileACLTopic(t)
		if err != nil {
			return nil, err
		}
		r.allow, r.access, r.qos, r.retain = base.allow, base.access, base.qos, base.retain
		out = append(out, r)
	}
	return out, nil
}

// compileACLTopic compiles a rule's topic, with "eq " for an exact one.
func compileACLTopic(t string) (jwtRule, error) {
	t = strings.NewReplacer("${username}", "%u", "${clientid}", "%c").Replace(t)
	if rest, ok := strings.CutPrefix(t, "eq "); ok {
		if rest == "" {
			return jwtRule{}, aclErr("empty eq topic")
		}
		l, usesU, usesC := compileTemplate(rest)
		r := jwtRule{exact: &l, usesU: usesU, usesC: usesC}
		if topic.ValidFilter(rest) {
			r.levels, _, _ = compileFilter(rest, true) // for deliveries, see check
		}
		return r, nil
	}
	if !topic.ValidFilter(t) {
		return jwtRule{}, aclErr("topic %q is not a valid topic filter", t)
	}
	levels, usesU, usesC := compileFilter(t, true)
	return jwtRule{levels: levels, usesU: usesU, usesC: usesC}, nil
}

// compileTemplate makes a template of the whole of s.
func compileTemplate(s string) (l level, usesU, usesC bool) {
	l.kind = tmplLevel
	start := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '%' || (s[i+1] != 'u' && s[i+1] != 'c') {
			continue
		}
		if i > start {
			l.parts = append(l.parts, tmplPart{lit: s[start:i]})
		}
		l.parts = append(l.parts, tmplPart{sub: s[i+1]})
		usesU = usesU || s[i+1] == 'u'
		usesC = usesC || s[i+1] == 'c'
		i++
		start = i + 1
	}
	if start < len(s) {
		l.parts = append(l.parts, tmplPart{lit: s[start:]})
	}
	return l, usesU, usesC
}

// check decides from the rules: decided is false when no rule matches and
// the check goes on to the next authoriser. qos and retain are -1 when not
// known (a delivery): an allow rule's QoS or retain condition then counts
// as met, a deny rule's as not met, as the SUBSCRIBE already passed them;
// and an "eq" rule counts for the topic names its filter matches, so that
// a subscription granted by "eq cmd/#" receives cmd/x. A delivery is thus
// judged as a subscription to exactly its topic name would be.
func (a *jwtACL) check(c *Client, acc Access, t string, qos, retain int) (decided, ok bool) {
	if acc == 0 || acc&^ReadWrite != 0 {
		return true, false
	}
	v := subst{username: c.Username, clientID: c.ClientID}
	badU := c.Username == "" || unsafeSubst(c.Username)
	badC := c.ClientID == "" || unsafeSubst(c.ClientID)
	for i := range a.rules {
		r := &a.rules[i]
		if r.access&acc != acc {
			continue
		}
		if r.qos != 0 {
			if qos < 0 {
				if !r.allow {
					continue
				}
			} else if r.qos&(1<<uint(qos)) == 0 {
				continue
			}
		}
		if r.retain >= 0 && acc&Write != 0 {
			if retain < 0 {
				if !r.allow {
					continue
				}
			} else if int(r.retain) != retain {
				continue
			}
		}
		if (r.usesU && badU) || (r.usesC && badC) {
			if r.allow {
				continue // a substitution that would widen the rule never grants
			}
			return true, false // and always denies
		}
		var match bool
		if r.exact != nil {
			if qos < 0 && acc == Read && r.levels != nil {
				match = topic.ValidFilter(t) && covers(r.levels, t, &v)
			} else {
				match = r.exact.matchTmpl(t, &v)
			}
		} else {
			match = topic.ValidFilter(t) && covers(r.levels, t, &v)
		}
		if match {
			return true, r.allow
		}
	}
	if a.denyRest {
		return true, false
	}
	return false, false
}

// JWTAuthorizer applies the ACL claim of a client's JWT before Next: the
// first matching rule decides, and a check no rule matches (or a client
// without an ACL claim) goes to Next. With Next nil, such a check is
// allowed, as when no authoriser is configured.
//
// It implements MessageAuthorizer, so QoS and retain conditions are judged
// on PUBLISH, wills and SUBSCRIBE. It does not allocate.
type JWTAuthorizer struct {
	Next Authorizer
}

// Immediate reports whether the whole decision is in memory: the claim
// always is, Next may not be.
func (a *JWTAuthorizer) Immediate() bool { return a.Next == nil || IsImmediate(a.Next) }

// Authorize applies the claim with QoS and retain unknown (a delivery).
func (a *JWTAuthorizer) Authorize(ctx context.Context, c *Client, acc Access, t string) (bool, error) {
	if c != nil && c.jwtACL != nil {
		if decided, ok := c.jwtACL.check(c, acc, t, -1, -1); decided {
			return ok, nil
		}
	}
	if a.Next == nil {
		return true, nil
	}
	return a.Next.Authorize(ctx, c, acc, t)
}

// AuthorizeMessage applies the claim with the QoS and retain flag. With
// Read it is a SUBSCRIBE: no rule matching, it goes to Next's
// AuthorizeSubscribe if Next has one.
func (a *JWTAuthorizer) AuthorizeMessage(ctx context.Context, c *Client, acc Access, t string, qos byte, retain bool) (bool, error) {
	if c != nil && c.jwtACL != nil {
		r := 0
		if retain {
			r = 1
		}
		if decided, ok := c.jwtACL.check(c, acc, t, int(qos), r); decided {
			return ok, nil
		}
	}
	switch n := a.Next.(type) {
	case nil:
		return true, nil
	case MessageAuthorizer:
		return n.AuthorizeMessage(ctx, c, acc, t, qos, retain)
	case SubscribeAuthorizer:
		if acc == Read { // a SUBSCRIBE
			return n.AuthorizeSubscribe(ctx, c, t)
		}
	}
	return a.Next.Authorize(ctx, c, acc, t)
}
