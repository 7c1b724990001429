package topic

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},
		{"//", true},
		{"$SYS/x", true},
		{" ", true},
		{"caf\u00e9", true},
		{strings.Repeat("a", MaxLen), true},
		{"", false},                            // [MQTT-4.7.3-1]
		{strings.Repeat("a", MaxLen+1), false}, // [MQTT-4.7.3-3]
		{"a\x00b", false},                      // [MQTT-4.7.3-2]
		{"a/+", false},                         // [MQTT-3.3.2-2]
		{"a/#", false},
		{"a+b", false},
		{"#", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%.20q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{"a", true},
		{"#", true},
		{"+", true},
		{"/", true},
		{"a/#", true},
		{"+/+", true},
		{"a/+/#", true},
		{"/+", true},
		{"+/", true},
		{"a//b", true},
		{"$SYS/#", true},
		{"$share/g/a/#", true},
		{strings.Repeat("a", MaxLen), true},
		{"", false},                            // [MQTT-4.7.3-1]
		{strings.Repeat("a", MaxLen+1), false}, // [MQTT-4.7.3-3]
		{"a\x00", false},                       // [MQTT-4.7.3-2]
		{"a#", false},                          // '#' fills a level
		{"a/#/b", false},                       // '#' is last
		{"#/", false},
		{"##", false},
		{"a/b#", false},
		{"a+", false}, // '+' fills a level
		{"+a", false},
		{"a/+b/c", false},
		{"++", false},
	}
	for _, tc := range tests {
		if got := ValidFilter(tc.filter); got != tc.want {
			t.Errorf("ValidFilter(%.20q) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}
