package auth

import (
	"encoding/json"
	"testing"
)

// FuzzJWTACLClaim: any JSON in the ACL claim is parsed or refused, never a
// panic, and a parsed claim answers checks on any topic.
func FuzzJWTACLClaim(f *testing.F) {
	f.Add(`[{"permission":"allow","action":"pub","topic":"a/%u/#","qos":[0,1],"retain":false}]`, "a/b/c")
	f.Add(`[{"permission":"deny","action":"all","topics":["eq x/${clientid}","#"]}]`, "x/c")
	f.Add(`{"pub":["a"],"sub":["b/#"],"all":"c"}`, "b/x")
	f.Add(`[{"permission":"allow","action":"sub","topic":"eq "}]`, "")
	f.Fuzz(func(t *testing.T, claim, topic string) {
		var raw any
		if json.Unmarshal([]byte(claim), &raw) != nil {
			return
		}
		acl, err := parseACLClaim(raw)
		if err != nil {
			return
		}
		c := &Client{Username: "u", ClientID: "c"}
		for _, acc := range []Access{Read, Write, ReadWrite} {
			acl.check(c, acc, topic, -1, -1)
			acl.check(c, acc, topic, 2, 1)
		}
	})
}
