package topic

// childIndexMin is the number of children from which a childSet keeps a map
// from level to position. Most nodes have a handful of children, found
// faster by scanning the keys than by hashing, and a map costs some hundred
// bytes per node.
const childIndexMin = 9

// childSet holds the children of one node, keyed by level string, compared
// byte by byte [MQTT-4.7.3-4]. keys[i] leads to nodes[i]; the slices are
// walked directly by wildcard matching.
type childSet[N any] struct {
	keys  []string
	nodes []*N
	index map[string]int32 // key -> position; nil while short
}

// get returns the child for key, or nil.
func (c *childSet[N]) get(key string) *N {
	if c.index != nil {
		if i, ok := c.index[key]; ok {
			return c.nodes[i]
		}
		return nil
	}
	for i, k := range c.keys {
		if k == key {
			return c.nodes[i]
		}
	}
	return nil
}

// add inserts a child that is not there yet.
func (c *childSet[N]) add(key string, n *N) {
	c.keys = append(c.keys, key)
	c.nodes = append(c.nodes, n)
	switch {
	case c.index != nil:
		c.index[key] = int32(len(c.keys) - 1)
	case len(c.keys) >= childIndexMin:
		c.index = make(map[string]int32, 2*len(c.keys))
		for i, k := range c.keys {
			c.index[k] = int32(i)
		}
	}
}

// replace puts n in the place of the child for key, which must exist.
func (c *childSet[N]) replace(key string, n *N) {
	if c.index != nil {
		c.nodes[c.index[key]] = n
		return
	}
	for i, k := range c.keys {
		if k == key {
			c.nodes[i] = n
			return
		}
	}
}

// remove deletes the child for key; the last child takes its place.
func (c *childSet[N]) remove(key string) {
	i := -1
	if c.index != nil {
		if j, ok := c.index[key]; ok {
			i = int(j)
		}
	} else {
		for j, k := range c.keys {
			if k == key {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return
	}
	last := len(c.keys) - 1
	if i != last {
		c.keys[i], c.nodes[i] = c.keys[last], c.nodes[last]
		if c.index != nil {
			c.index[c.keys[i]] = int32(i)
		}
	}
	c.keys[last], c.nodes[last] = "", nil
	c.keys, c.nodes = c.keys[:last], c.nodes[:last]
	if c.index != nil {
		delete(c.index, key)
		if last < childIndexMin/2 {
			c.index = nil
		}
	}
	if last == 0 {
		c.keys, c.nodes = nil, nil
	}
}
