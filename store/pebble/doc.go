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
//	i/<len><client id><id:2>   inbound QoS 2 identifier awaiting PUBREL (empty value)
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
// Writes are committed to Pebble's write-ahead log without waiting for the
// disk (pebble.NoSync). Options.Fsync says when they become durable:
//
//   - Always (the default): Sync commits an empty log record with
//     pebble.Sync, which waits for the log up to it, and so for every
//     write made before, to reach the disk. The broker calls Sync before
//     PUBACK, PUBREC and SUBACK, so an acknowledged message survives a
//     crash of the process or of the machine. Writers that sync at the same
//     moment share one fsync (group commit): with 8 writers there is about
//     one fsync per 4 acknowledgements. Sync returns at once when nothing
//     was written since the last sync.
//   - Interval: a timer syncs every Options.Interval (default 1 s) and Sync
//     returns at once. A crash of the process loses nothing (the log is in
//     the operating system's cache); a crash of the machine or a power cut
//     loses at most the writes of the last interval plus one fsync.
//   - Never: the store syncs only when it closes. A crash of the process
//     loses nothing; a crash of the machine loses what the operating system
//     had not yet written back (on Linux, up to about 30 s).
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
