package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// ParseDuration parses a duration in one of three forms:
//
//   - a baseplate Timespan, "<int> <unit>": "30 seconds", "100 milliseconds",
//     with unit millisecond(s), second(s), minute(s), hour(s) or day(s), or
//     the short forms ms, s, m, h and d, with or without the space ("5s");
//   - a Go duration as accepted by time.ParseDuration: "1m30s", "1.5h";
//   - a bare integer, a number of seconds: "10"; "0" is zero.
//
// Units are case-insensitive and surrounding space is ignored. Negative
// durations and durations that overflow time.Duration are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s[0] == '-' {
		return 0, errors.New("negative duration")
	}
	num, rest := leadingDigits(s)
	unit := strings.ToLower(strings.TrimSpace(rest))
	if num != "" {
		mult, ok := durationUnits[unit]
		if unit == "" {
			mult, ok = time.Second, true
		}
		if ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n > math.MaxInt64/int64(mult) {
				return 0, errors.New("duration too large")
			}
			return time.Duration(n) * mult, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, errors.New("negative duration")
		}
		return d, nil
	}
	if num != "" && isLetters(unit) {
		return 0, fmt.Errorf("unknown unit %q (want milliseconds, seconds, minutes, hours or days, or a Go duration such as 10s)", strings.TrimSpace(rest))
	}
	return 0, errors.New(`not a duration (want e.g. "30 seconds", "100 milliseconds", "1m30s" or a number of seconds)`)
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// ParseSize parses a number of bytes: a bare integer ("1048576"), or an
// integer and a unit, B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024), case-insensitive, with or without a space between:
// "64 MiB", "10MB". Negative sizes and sizes that overflow int64 are
// refused.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("negative size")
	}
	num, rest := leadingDigits(s)
	if num == "" {
		return 0, errors.New("not a size (want a number of bytes, or a whole number with B, KB, MB, GB, KiB, MiB or GiB)")
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(rest))]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (want B, KB, MB, GB, KiB, MiB or GiB)", strings.TrimSpace(rest))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

// ParseBool parses true/false, yes/no, on/off and 1/0, case-insensitively,
// as Python's configparser does.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("not a boolean (want true, false, yes, no, on, off, 1 or 0)")
}

// parseInt parses a decimal integer in [lo, hi]; hi < 0 means no bound.
func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("not an integer")
	}
	switch {
	case hi >= 0 && (n < lo || n > hi):
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	case n < lo:
		return 0, fmt.Errorf("must be at least %d", lo)
	}
	return n, nil
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

// expandEnv replaces $NAME and ${NAME} with the value lookup returns, as
// Python's os.path.expandvars does: NAME is letters, digits and
// underscores, and a variable lookup does not know stays as written.
// ${NAME:-DEFAULT} is DEFAULT when NAME is unset or empty, as in the shell.
func expandEnv(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		var name string
		end := i + 1
		if end < len(s) && s[end] == '{' {
			j := strings.IndexByte(s[end:], '}')
			if j < 0 {
				b.WriteString(s[i:])
				break
			}
			name, end = s[end+1:end+j], end+j+1
			if n, def, ok := strings.Cut(name, ":-"); ok {
				if v, _ := lookup(n); v != "" {
					def = v
				}
				b.WriteString(def)
				i = end
				continue
			}
		} else {
			for end < len(s) && isNameByte(s[end]) {
				end++
			}
			name = s[i+1 : end]
		}
		if v, ok := lookup(name); ok && name != "" {
			b.WriteString(v)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z'
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) || i == 0 && '0' <= s[i] && s[i] <= '9' {
			return false
		}
	}
	return s != ""
}
