package broker

import (
	"strings"

	"github.com/gannet-mqtt/gannet/packet"
	"github.com/gannet-mqtt/gannet/topic"
)

// A listener's mount point (ListenerOptions.MountPoint, Mosquitto's
// mount_point) is prefixed to every topic name and filter its clients
// send: publishes, wills, subscriptions and unsubscriptions. The broker
// works, and the authoriser decides, on the prefixed topics (as Mosquitto
// does). Messages go out to such a client with the prefix removed, and
// only those under it: everything else is hidden.

// mount returns name under c's mount point.
func (c *conn) mount(name string) string {
	if c.lo == nil || c.lo.MountPoint == "" {
		return name
	}
	return c.lo.MountPoint + name
}

// mountFilter returns filter under c's mount point; for a shared
// subscription, the filter inside $share/{group}/.
func (c *conn) mountFilter(filter string) string {
	if c.lo == nil || c.lo.MountPoint == "" {
		return filter
	}
	if group, inner, ok := topic.ParseShare(filter); ok {
		return "$share/" + group + "/" + c.lo.MountPoint + inner
	}
	return c.lo.MountPoint + filter
}

// outTopic returns the topic name m goes out with to c, and false if c may
// not see it (outside its mount point).
func (c *conn) outTopic(m *message) (string, bool) {
	if c.lo == nil || c.lo.MountPoint == "" {
		return m.topic, true
	}
	mp := c.lo.MountPoint
	if len(m.topic) <= len(mp) || !strings.HasPrefix(m.topic, mp) {
		return "", false
	}
	return m.topic[len(mp):], true
}

// appendMounted311 appends a 3.1/3.1.1 PUBLISH of m under another topic
// name than its own (the shared encoding carries the full one). wmu held.
func (c *conn) appendMounted311(m *message, name string, qos byte, id uint16, retain, dup bool) {
	p := packet.Publish{Dup: dup && qos > 0, QoS: qos, Retain: retain, Topic: name, PacketID: id, Payload: m.payload}
	c.out, _ = p.Append(c.out, c.version)
}
