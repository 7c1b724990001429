//go:build !race

package packet

// raceEnabled is set when the race detector is on.
const raceEnabled = false
