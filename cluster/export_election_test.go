package cluster

// Leads reports whether this node's NATS server leads group: "messages"
// (the messages stream) or a bucket by its short name ("owners",
// "sessions", ...). It asks nothing of the other nodes.
func (c *Cluster) Leads(group string) bool {
	if c.ns == nil {
		return false
	}
	name := "KV_gannet_" + c.opt.Name + "_" + group
	if group == "messages" {
		name = c.messageStream()
	}
	return c.ns.JetStreamIsStreamLeader(c.ns.GlobalAccount().Name, name)
}
