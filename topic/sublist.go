package topic

// indexMin is the length at which a subList starts keeping a map from
// subscriber to position; below it a linear scan is cheaper. The map is
// dropped again when the list shrinks below half of it.
const indexMin = 32

// subList holds the subscriptions of one node (or one shared group), at most
// one per subscriber. Match reads subs directly under the trie's read lock.
type subList[S comparable] struct {
	subs  []Subscription[S]
	index map[S]int32 // subscriber -> position in subs; nil while short
}

// find returns the position of s's subscription, or -1.
func (l *subList[S]) find(s S) int {
	if l.index != nil {
		if i, ok := l.index[s]; ok {
			return int(i)
		}
		return -1
	}
	for i := range l.subs {
		if l.subs[i].Subscriber == s {
			return i
		}
	}
	return -1
}

// put inserts sub, or replaces the subscription of the same subscriber and
// reports true [MQTT-3.8.4-3]. Trie write lock held on entry.
func (l *subList[S]) put(sub Subscription[S]) (replaced bool) {
	if i := l.find(sub.Subscriber); i >= 0 {
		l.subs[i] = sub
		return true
	}
	l.subs = append(l.subs, sub)
	switch {
	case l.index != nil:
		l.index[sub.Subscriber] = int32(len(l.subs) - 1)
	case len(l.subs) >= indexMin:
		l.index = make(map[S]int32, len(l.subs)*2)
		for i := range l.subs {
			l.index[l.subs[i].Subscriber] = int32(i)
		}
	}
	return false
}

// remove deletes s's subscription and reports whether there was one. The
// last subscription takes the freed place. Trie write lock held on entry.
func (l *subList[S]) remove(s S) bool {
	i := l.find(s)
	if i < 0 {
		return false
	}
	last := len(l.subs) - 1
	if i != last {
		l.subs[i] = l.subs[last]
		if l.index != nil {
			l.index[l.subs[i].Subscriber] = int32(i)
		}
	}
	l.subs[last] = Subscription[S]{} // drop the references it held
	l.subs = l.subs[:last]
	if l.index != nil {
		delete(l.index, s)
		if len(l.subs) < indexMin/2 {
			l.index = nil
		}
	}
	if len(l.subs) == 0 {
		l.subs = nil
	}
	return true
}
