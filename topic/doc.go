// Package topic routes MQTT topic names to subscriptions and to retained
// messages. It imports the standard library only.
//
// Core types:
//
//   - [Trie] holds subscriptions, generic over a comparable subscriber handle
//     (the broker uses a pointer to its session). [Trie.Match] turns a topic
//     name into a list of [Delivery] values written into a reusable [Matches]:
//     one per subscriber for its non-shared subscriptions, plus one per
//     matching shared group.
//   - [Retained] indexes retained messages by topic name, generic over the
//     message value; [Retained.Match] walks only the part of the index a
//     filter can reach.
//   - [ParseShare] splits "$share/{group}/{filter}"; [ValidName] and
//     [ValidFilter] check names and filters before they reach either index.
//
// # Matching rules
//
// Names and filters are split on '/', and every level is compared byte by
// byte: empty levels are real levels ("a//b", "/a"), and nothing is
// normalised [MQTT-4.7.3-4]. "+" matches exactly one level, empty included;
// "#" matches the parent level and any number of levels below it ("a/#"
// matches "a"). A filter whose first character is a wildcard never matches a
// name starting with '$' [MQTT-4.7.2-1]; "$SYS/#" does match "$SYS/x".
//
// # What the caller must do
//
// Filters given to [Trie.Add], [Trie.Remove] and [Retained.Match], and names
// given to [Trie.Match] and [Retained.Set], must already be valid (see
// [ValidFilter], [ValidName], [ParseShare]); the indexes do not check them
// again. Both indexes keep substrings of the strings they are given, so those
// must be ordinary immutable strings, never unsafe views of a reused buffer.
//
// The broker keeps, per session, the filters it subscribed to: the trie has
// no per-subscriber lookup, and a session that ends must [Trie.Remove] each
// of its filters.
//
// # Locking
//
// [Trie] and [Retained] are safe for concurrent use; each has one
// sync.RWMutex and takes no other lock. [Trie.Match] holds the read lock for
// the whole walk, including its calls to the eligible callback, and
// [Retained.Match] holds it while calling fn: those callbacks must not call
// back into the same Trie or Retained (a write would deadlock, and a nested
// read can deadlock behind a waiting writer). A [Matches] belongs to one
// goroutine at a time.
//
// # Spec citations
//
// Comments cite normative statements as [MQTT-x.y.z-n], listed in
// shared/spec. Where MQTT 3.1.1 and 5.0 give one identifier different
// meanings, the version is named: No Local is [MQTT-3.8.3-3] (v5), overlapping
// subscriptions are [MQTT-3.3.5-1] (v3.1.1) and [MQTT-3.3.4-2] (v5).
package topic
