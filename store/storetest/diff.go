package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/store"
)

// The Diff functions describe how got differs from want, or return "".
// Times are compared with time.Time.Equal (a store need not keep the
// location or the monotonic reading), nil and empty slices are equal, and
// a session's subscriptions and inbound identifiers are compared as sets.

// DiffSession compares two sessions.
func DiffSession(want, got *store.Session) string {
	if got == nil {
		return "missing"
	}
	var d differ
	d.eq("ClientID", want.ClientID, got.ClientID)
	d.eq("Version", want.Version, got.Version)
	d.eq("Expiry", want.Expiry, got.Expiry)
	d.time("Disconnected", want.Disconnected, got.Disconnected)
	d.eq("Owner", want.Owner, got.Owner)
	ws, gs := sortedSubs(want.Subscriptions), sortedSubs(got.Subscriptions)
	if !slices.Equal(ws, gs) {
		d.add("Subscriptions = %+v, want %+v", gs, ws)
	}
	if wi, gi := slices.Sorted(slices.Values(want.Inbound)), slices.Sorted(slices.Values(got.Inbound)); !slices.Equal(wi, gi) {
		d.add("Inbound = %v, want %v", gi, wi)
	}
	return d.String()
}

func sortedSubs(subs []store.Subscription) []store.Subscription {
	s := slices.Clone(subs)
	slices.SortFunc(s, func(a, b store.Subscription) int { return strings.Compare(a.Filter, b.Filter) })
	return s
}

// DiffEntry compares two queue entries and their messages.
func DiffEntry(want, got *store.Entry) string {
	if got == nil {
		return "missing"
	}
	var d differ
	d.eq("Seq", want.Seq, got.Seq)
	d.eq("QoS", want.QoS, got.QoS)
	d.eq("Retain", want.Retain, got.Retain)
	d.eq("PacketID", want.PacketID, got.PacketID)
	d.eq("State", want.State, got.State)
	if !slices.Equal(want.SubIDs, got.SubIDs) {
		d.add("SubIDs = %v, want %v", got.SubIDs, want.SubIDs)
	}
	switch {
	case want.Message == nil && got.Message != nil:
		d.add("Message = %d %q, want nil", got.Message.ID, got.Message.Topic)
	case want.Message != nil:
		if m := DiffMessage(want.Message, got.Message); m != "" {
			d.add("Message: %s", m)
		}
	}
	return d.String()
}

// DiffMessage compares two messages, properties included.
func DiffMessage(want, got *store.Message) string {
	if got == nil {
		return "missing"
	}
	var d differ
	d.eq("ID", want.ID, got.ID)
	d.eq("Topic", want.Topic, got.Topic)
	if !bytes.Equal(want.Payload, got.Payload) {
		d.add("Payload = %q, want %q", abbrev(got.Payload), abbrev(want.Payload))
	}
	d.eq("QoS", want.QoS, got.QoS)
	d.eq("Retain", want.Retain, got.Retain)
	d.time("Created", want.Created, got.Created)
	d.time("Expiry", want.Expiry, got.Expiry)
	if wp, gp := normalProps(want.Properties), normalProps(got.Properties); !reflect.DeepEqual(wp, gp) {
		d.add("Properties = %+v, want %+v", gp, wp)
	}
	return d.String()
}

func abbrev(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

// normalProps makes empty slices nil so that DeepEqual compares content.
func normalProps(p packet.Properties) packet.Properties {
	if len(p.CorrelationData) == 0 {
		p.CorrelationData = nil
	}
	if len(p.AuthData) == 0 {
		p.AuthData = nil
	}
	if len(p.SubscriptionIDs) == 0 {
		p.SubscriptionIDs = nil
	}
	if len(p.User) == 0 {
		p.User = nil
	}
	return p
}

type differ struct{ diffs []string }

func (d *differ) add(format string, args ...any) {
	d.diffs = append(d.diffs, fmt.Sprintf(format, args...))
}

func (d *differ) eq(field string, want, got any) {
	if want != got {
		d.add("%s = %v, want %v", field, got, want)
	}
}

func (d *differ) time(field string, want, got time.Time) {
	if !want.Equal(got) || want.IsZero() != got.IsZero() {
		d.add("%s = %v, want %v", field, got, want)
	}
}

func (d *differ) String() string { return strings.Join(d.diffs, "; ") }
