package broker

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/auth"
	"github.com/gannet-mqtt/gannet/packet"
)

// FuzzTopicOps feeds client-chosen strings to the parsers of delayed
// topics and rewrite templates and to the filter matcher: none panics, a
// delayed topic accepted has a valid target within the maximum delay, and
// matching agrees with itself on a name matched against its own levels.
func FuzzTopicOps(f *testing.F) {
	for _, s := range []string{"$delayed/10/a/b", "$delayed//x", "$delayed/1", "$delayed/99999999999/x", "a/+/#", "${clientid}/$1$", "$12x", "$"} {
		f.Add(s, "a/b")
	}
	re := regexp.MustCompile(`^(\w*)/?(.*)$`)
	f.Fuzz(func(t *testing.T, a, b string) {
		if target, d, rc, ok := parseDelayed(a, time.Hour); ok && rc == packet.Success {
			if target == "" || target[0] == '$' || d > time.Hour || d < 0 || !strings.HasSuffix(a, "/"+target) {
				t.Fatalf("parseDelayed(%q) = %q, %v", a, target, d)
			}
		}
		filterMatches(a, b)
		if !strings.ContainsAny(b, "+#") && len(b) > 0 && b[0] != '$' && !filterMatches(b, b) {
			t.Fatalf("%q does not match itself", b)
		}
		if sm := re.FindStringSubmatchIndex(b); sm != nil {
			expandRewrite(a, b, sm, &auth.Client{ClientID: "c", Username: "u"})
		}
	})
}
