//go:build race

package packet

// raceEnabled is set when the race detector is on: it makes some
// allocations the compiler otherwise removes (see TestDecodeAllocBound).
const raceEnabled = true
