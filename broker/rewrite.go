package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/topic"
)

// Topic rewrite, as EMQX's: a rule whose filter matches a topic replaces
// it, through a regular expression, before the broker authorises and routes
// it. Rules are tried in order and the first whose filter matches decides:
// if its expression does not match, the topic stays as it is.

// RewriteAction says what a rule applies to.
type RewriteAction uint8

const (
	RewritePublish   RewriteAction = 1 << iota // PUBLISH topics and will topics
	RewriteSubscribe                           // SUBSCRIBE and UNSUBSCRIBE filters
	RewriteAll       = RewritePublish | RewriteSubscribe
)

// ParseRewriteAction reads "publish", "subscribe" or "all".
func ParseRewriteAction(s string) (RewriteAction, error) {
	switch s {
	case "publish":
		return RewritePublish, nil
	case "subscribe":
		return RewriteSubscribe, nil
	case "all":
		return RewriteAll, nil
	}
	return 0, fmt.Errorf("rewrite action %q must be publish, subscribe or all", s)
}

// RewriteRule is one rule of Options.Rewrite.
type RewriteRule struct {
	Action RewriteAction
	// Filter selects the topics (or subscription filters) the rule
	// applies to; a subscription filter is matched level by level, its
	// wildcards as plain levels.
	Filter string
	// Regex is matched against the whole topic; Replace is the new topic,
	// where $1..$99 stand for the captures, ${clientid} and ${username}
	// for the client's identifier and user name.
	Regex   *regexp.Regexp
	Replace string
}

func (r *RewriteRule) validate() error {
	var errs []error
	if r.Action == 0 || r.Action&^RewriteAll != 0 {
		errs = append(errs, errors.New("action must be publish, subscribe or all"))
	}
	if !topic.ValidFilter(r.Filter) {
		errs = append(errs, fmt.Errorf("filter %q is not a valid topic filter", r.Filter))
	}
	if r.Regex == nil {
		errs = append(errs, errors.New("regex is missing"))
	}
	return errors.Join(errs...)
}

// rewrite applies the first rule for action whose filter matches name.
// filter tells whether name is a subscription filter. It returns name
// unchanged when no rule applies or the result would not be a valid topic
// name (or filter).
func (s *Server) rewrite(action RewriteAction, name string, filter bool, who *auth.Client) string {
	rules := s.opt().Rewrite
	for i := range rules {
		r := &rules[i]
		if r.Action&action == 0 || !filterMatches(r.Filter, name) {
			continue
		}
		sm := r.Regex.FindStringSubmatchIndex(name)
		if sm == nil {
			return name
		}
		out := expandRewrite(r.Replace, name, sm, who)
		ok := topic.ValidName(out)
		if filter {
			ok = topic.ValidFilter(out)
		}
		if !ok {
			s.log.Warn("topic rewrite gives an invalid topic; left unchanged: check the rule", "rule", i+1, "topic", name, "result", out)
			return name
		}
		return out
	}
	return name
}

// rewriteFilter rewrites a subscription filter; a shared subscription's
// inner filter is rewritten and its group kept.
func (s *Server) rewriteFilter(f string, who *auth.Client) string {
	if group, inner, ok := topic.ParseShare(f); ok {
		if n := s.rewrite(RewriteSubscribe, inner, true, who); n != inner {
			return "$share/" + group + "/" + n
		}
		return f
	}
	return s.rewrite(RewriteSubscribe, f, true, who)
}

// expandRewrite builds the replacement: $N is capture N (empty when it did
// not take part), ${clientid} and ${username} the client's.
func expandRewrite(tmpl, src string, sm []int, who *auth.Client) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		ch := tmpl[i]
		if ch != '$' || i+1 == len(tmpl) {
			b.WriteByte(ch)
			continue
		}
		rest := tmpl[i+1:]
		switch {
		case strings.HasPrefix(rest, "{clientid}"):
			if who != nil {
				b.WriteString(who.ClientID)
			}
			i += len("{clientid}")
		case strings.HasPrefix(rest, "{username}"):
			if who != nil {
				b.WriteString(who.Username)
			}
			i += len("{username}")
		case rest[0] >= '0' && rest[0] <= '9':
			n, j := 0, 0
			for j < len(rest) && j < 2 && rest[j] >= '0' && rest[j] <= '9' {
				n = n*10 + int(rest[j]-'0')
				j++
			}
			if 2*n+1 < len(sm) && sm[2*n] >= 0 {
				b.WriteString(src[sm[2*n]:sm[2*n+1]])
			}
			i += j
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// filterMatches reports whether topic name (or a subscription filter, its
// wildcards taken as plain levels) matches filter. A filter starting with
// a wildcard does not match a name starting with '$' [MQTT-4.7.2-1].
func filterMatches(filter, name string) bool {
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
		if !fmore {
			return !nmore
		}
		if !nmore {
			return frest == "#" // "a/#" matches "a" [MQTT-4.7.1-2]
		}
		filter, name = frest, nrest
	}
}

// who is the client as rewrite rules see it: c.authc, which an anonymous
// client without an authoriser does not keep, or its identifier.
func (c *conn) who() *auth.Client {
	if c.authc != nil {
		return c.authc
	}
	return &auth.Client{ClientID: c.clientID}
}
