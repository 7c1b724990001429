// Package pebble is Gannet's durable store: a store.Store (and
// store.Syncer, store.InboundStore) on a Pebble database in one directory.
//
//	st, err := pebble.Open("./data", pebble.DefaultOptions())
//	...
//	opts.Store = st // broker.Options
//	...
//	srv.Close()
//	st.Close()
//
// # Keys
//
// Every record is one key. Client identifiers inside a key are prefixed
// with their length (two bytes, big-endian) so that the keys of client
// "a" never run into those of "a/b"; numbers are big-endian so that keys
// sort by them.
//
//	_format                    format version, one byte (1)
//	_hint                      sizes of the in-memory maps at the last Close (uvarint x2), a hint
//	s/<client id>              session: version, expiry, disconnect time, subscriptions
//	q/<len><client id><seq:8>  queue entry: flags, message ID, packet ID, subscription IDs
//	m/<message id:8>           message: flags, ID, topic, times, properties, payload
//	r/<topic>                  retained message, encoded as under m/
//	p/<topic>                  publisher of the retained message: its message ID, client id, user, listener, certificate CN
//	i/<len><client id><id:2>   inbound QoS 2 identifier awaiting PUBREL (empty value)
//	d/<id:8>                   delayed message: due time, then the message encoded as under m/
//
// A message queued for many sessions is stored once, under m/, however
// many entries refer to it: fan-out to 10,000 offline sessions writes one
// payload and 10,000 small entries. The store counts the entries of each
// message in memory (Open rebuilds the counts by scanning the entries); the
// batch that adds the first entry of a message writes it and the batch
// that removes the last (Remove, Update to another message, DeleteSession,
// an Append over an existing Seq) deletes it, so a message never outlives
// its entries nor goes before them. Should a message be left that no
// entry refers to, Open deletes it.
//
// # Encoding
//
// Values use a compact binary format of this package (codec.go), built
// from encoding/binary uvarints and varints: a string is its length and
// bytes, a time is 0 for the zero time or nanoseconds+1 then Unix seconds,
// a message's payload is the rest of the value. The _format key holds the
// version of the format; Open refuses a directory of a newer version, and
// a record that does not decode gives an error that names its key and the
// directory, wrapping ErrDamaged.
//
// # Durability
//
// Writes are committed to Pebble's write-ahead log without waiting
// (pebble.NoSync): they stay in Pebble's log buffer, inside the process,
// until a 32 KiB block fills or something syncs. Sync, which the broker
// calls before every acknowledgement of what it stored (PUBACK, PUBREC,
// SUBACK, UNSUBACK, CONNACK; the acknowledgements of one read share one
// call), after a retained QoS 0 message and after a session ended at
// DISCONNECT, commits an empty record with pebble.Sync: the log up to it is
// written to its file (write(2)). So in every mode a crash of the process
// alone (kill -9, a panic, the OOM killer) loses nothing the broker
// acknowledged, deletions included. What a crash of the machine or a power
// cut loses depends on Options.Fsync:
//
//   - Always (the default): Sync also waits for the disk (fsync), so
//     nothing acknowledged is lost. Writers that sync at the same moment
//     share one fsync (group commit): with 8 writers there is about one
//     fsync per 4 acknowledgements. Sync returns at once when nothing was
//     written since the last one.
//   - Interval: the log's fsync is a no-op for Sync (walFS) and a timer
//     fsyncs it every Options.Interval (default 1 s), and when Pebble
//     moves on to a new log. A crash of the machine loses at most the
//     writes of the last interval plus one fsync.
//   - Never: Sync writes without fsync and the store fsyncs only when it
//     closes. A crash of the machine loses what the operating system had
//     not yet written back (on Linux, up to about 30 s).
//
// Close syncs, flushes the memory table to disk so that the next Open
// need not replay the log, and closes the database.
//
// # Damage
//
// Open and the Load methods report a damaged directory (a table or the
// manifest truncated or overwritten, a record that does not decode, a
// queue entry whose message is missing) with an error that wraps
// ErrDamaged, names the directory and, where Pebble says, the file, and
// tells to restore the directory from a backup or move it aside. A panic
// of Pebble while it opens or reads is turned into such an error. One
// damage cannot be told from a crash: the write-ahead log being written,
// cut short, replays up to the cut, as after a crash in the middle of a
// write; what was synced after the cut is lost without an error.
//
// # Concurrency
//
// A Store is safe for concurrent use. The queue writes that change a
// message's count (Append, Update, Remove, DeleteSession) are serialised
// by one mutex from the count to the commit; a commit without sync takes a
// few microseconds. Sessions, retained messages and inbound identifiers
// are written without it. LoadQueue reads the queue in chunks, each from
// a snapshot, and calls fn between chunks without holding any lock, so fn
// may write to the store.
package pebble
