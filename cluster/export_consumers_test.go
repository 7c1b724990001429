package cluster

import "context"

// Consumers returns the number of JetStream consumers on every stream
// of the cluster's account (the messages and retained streams and every
// KV bucket), as the servers report them.
func (c *Cluster) Consumers(ctx context.Context) (int, error) {
	n := 0
	names := c.js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			return 0, err
		}
		n += st.CachedInfo().State.Consumers
	}
	return n, names.Err()
}
