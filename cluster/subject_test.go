package cluster

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

var subjectCases = []struct{ topic, subject string }{
	{"a/b", "a.b"},
	{"a.b", "a=2Eb"},
	{"*/>", "=2A.=3E"},
	{"$SYS/x", "=24SYS.x"},
	{"with space", "with=20space"},
	{"/", "=.="},
	{"a//b/", "a.=.b.="},
	{"=", "=3D"},
	{"é", "=C3=A9"},
	{"", "="},
}

func TestTopicSubject(t *testing.T) {
	for _, c := range subjectCases {
		if got := TopicSubject(c.topic); got != c.subject {
			t.Errorf("TopicSubject(%q) = %q, want %q", c.topic, got, c.subject)
		}
		back, err := SubjectTopic(c.subject)
		if err != nil || back != c.topic {
			t.Errorf("SubjectTopic(%q) = %q, %v; want %q", c.subject, back, err, c.topic)
		}
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "=4", "=41", "a=", "=zz", "a b", "*", "a.>", "==3D"} {
		if got, err := SubjectTopic(bad); err == nil {
			t.Errorf("SubjectTopic(%q) = %q, want an error", bad, got)
		}
	}
}

// natsMatch is NATS subject matching, written from its definition.
func natsMatch(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return len(s) > i
		}
		if i >= len(s) || (ft != "*" && ft != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// mqttMatch matches with the broker's own trie.
func mqttMatch(filter, name string) bool {
	tr := topic.NewTrie[int](topic.TrieOptions{})
	tr.Add(topic.Subscription[int]{Subscriber: 1, Filter: filter})
	var m topic.Matches[int]
	tr.Match(name, 0, func(int) bool { return true }, &m)
	return len(m.Deliveries) > 0
}

func TestFilterSubjectMatchesAsMQTT(t *testing.T) {
	filters := []string{"a/+", "a/#", "#", "+", "+/+", "a/+/c", "/#", "+/", "a.b/#", "$SYS/#"}
	names := []string{"a", "a/b", "a/b/c", "a/", "/", "/a", "a.b", "a.b/c", "x", "$SYS/x", "a/b/c/d"}
	for _, f := range filters {
		for _, n := range names {
			sub, parent := FilterSubject(f)
			got := natsMatch(sub, TopicSubject(n)) || (parent != "" && natsMatch(parent, TopicSubject(n)))
			want := mqttMatch(f, n)
			if strings.HasPrefix(n, "$") && (f[0] == '+' || f[0] == '#') && got {
				continue // NATS may match more: [MQTT-4.7.2-1] is the trie's to apply
			}
			if got != want {
				t.Errorf("filter %q, topic %q: NATS matches %v, MQTT %v", f, n, got, want)
			}
		}
	}
}

// FuzzTopicSubject checks that the mapping is reversible for every valid
// topic and gives subjects NATS accepts; and that SubjectTopic accepts
// only what TopicSubject makes.
func FuzzTopicSubject(f *testing.F) {
	for _, c := range subjectCases {
		f.Add(c.topic)
		f.Add(c.subject)
	}
	f.Add("a/\u00e9\u4e16/ /$x/*/>/.")
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) && packet.ValidTopicName(s) == nil && len(s) > 0 {
			sub := TopicSubject(s)
			for _, tok := range strings.Split(sub, ".") {
				if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
					t.Fatalf("TopicSubject(%q) = %q: token %q is not a valid NATS token", s, sub, tok)
				}
				for i := 0; i < len(tok); i++ {
					if !plain(tok[i]) && tok[i] != '=' {
						t.Fatalf("TopicSubject(%q) = %q: byte %q outside the KV key alphabet", s, sub, tok[i])
					}
				}
			}
			back, err := SubjectTopic(sub)
			if err != nil || back != s {
				t.Fatalf("SubjectTopic(TopicSubject(%q)) = %q, %v", s, back, err)
			}
		}
		if topicName, err := SubjectTopic(s); err == nil {
			if again := TopicSubject(topicName); again != s {
				t.Fatalf("SubjectTopic(%q) = %q, whose subject is %q: not one to one", s, topicName, again)
			}
		}
	})
}
