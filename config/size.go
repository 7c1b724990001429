package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. In a file it is an integer or a number with
// a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, KB, MB, GB, TB
// (powers of 1000), for example 4MiB or "1.5 GiB".
type Size int64

var sizeUnits = []struct {
	name string
	mult int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3},
	{"B", 1},
}

// ParseSize parses a byte count such as 1048576, 4MiB or 1.5GB.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("%q is not a size: want bytes or a number with a unit, like 4MiB", s)
	}
	if n, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size: want bytes or a number with a unit, like 4MiB", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(math.Round(v)), nil
}

// String writes the size with the largest binary unit that divides it,
// for example 4MiB, or as bytes.
func (s Size) String() string {
	if s != 0 {
		for _, u := range sizeUnits[:4] {
			if int64(s)%u.mult == 0 {
				return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalYAML writes the size as String does.
func (s Size) MarshalYAML() (any, error) {
	str := s.String()
	if !strings.HasSuffix(str, "B") {
		return int64(s), nil
	}
	return str, nil
}

// Mode is a file permission, written in octal ("0660").
type Mode fs.FileMode

// ParseMode parses an octal permission such as 0660, 660 or 0o660.
func ParseMode(s string) (Mode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, errors.New("want an octal permission such as 0660")
	}
	return Mode(n), nil
}

// String writes the mode as four octal digits.
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalYAML writes the mode as a quoted octal string.
func (m Mode) MarshalYAML() (any, error) { return m.String(), nil }
