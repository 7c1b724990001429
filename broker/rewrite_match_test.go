package broker

import (
	"regexp"
	"testing"

	"github.com/gannet-mqtt/gannet/auth"
)

func TestFilterMatches(t *testing.T) {
	for _, c := range []struct {
		filter, name string
		want         bool
	}{
		{"a/#", "a", true}, // [MQTT-4.7.1-2]
		{"a/#", "a/b/c", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"#", "$SYS/x", false}, // [MQTT-4.7.2-1]
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"a/", "a/", true},
		{"a/", "a", false},
		{"a/+", "a/", true},
		{"a/#", "a/+", true}, // a subscription filter, its '+' taken as a level
		{"x/+", "x/#", true},
	} {
		if got := filterMatches(c.filter, c.name); got != c.want {
			t.Errorf("filterMatches(%q, %q) = %v, want %v", c.filter, c.name, got, c.want)
		}
	}
}

func TestExpandRewrite(t *testing.T) {
	re := regexp.MustCompile(`^(\w+)/(\w+)(/z)?$`)
	who := &auth.Client{ClientID: "cid", Username: "usr"}
	for _, c := range []struct{ tmpl, src, want string }{
		{"$2/$1", "a/b", "b/a"},
		{"$1abc", "a/b", "aabc"},
		{"$3x", "a/b", "x"}, // a capture that took no part
		{"$9", "a/b", ""},   // no such capture
		{"${clientid}/${username}/$1", "a/b", "cid/usr/a"},
		{"cost$", "a/b", "cost$"},
		{"$x", "a/b", "$x"},
		{"$12", "a/b", ""},
	} {
		sm := re.FindStringSubmatchIndex(c.src)
		if got := expandRewrite(c.tmpl, c.src, sm, who); got != c.want {
			t.Errorf("expand %q on %q = %q, want %q", c.tmpl, c.src, got, c.want)
		}
	}
}
