package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var timespanUnits = map[string]time.Duration{
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond, "ms": time.Millisecond,
	"second": time.Second, "seconds": time.Second, "s": time.Second, "sec": time.Second, "secs": time.Second,
	"minute": time.Minute, "minutes": time.Minute, "m": time.Minute, "min": time.Minute, "mins": time.Minute,
	"hour": time.Hour, "hours": time.Hour, "h": time.Hour,
	"day": 24 * time.Hour, "days": 24 * time.Hour, "d": 24 * time.Hour,
}

// ParseDuration parses a baseplate Timespan ("30 seconds", "100
// milliseconds", "2 minutes"), a Go duration ("1m30s") or a bare number of
// seconds ("10"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative duration")
		}
		if n > math.MaxInt64/int64(time.Second) {
			return 0, errors.New("duration too large")
		}
		return time.Duration(n) * time.Second, nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i > 0 {
		unit := strings.ToLower(strings.TrimSpace(s[i:]))
		if d, ok := timespanUnits[unit]; ok {
			n, err := strconv.ParseInt(s[:i], 10, 64)
			if err != nil || n > math.MaxInt64/int64(d) {
				return 0, errors.New("duration too large")
			}
			return time.Duration(n) * d, nil
		}
		if strings.ContainsAny(s[i:], " \t") || !looksGo(s) {
			return 0, fmt.Errorf("unknown unit %q (want milliseconds, seconds, minutes, hours or days, or a Go duration such as 10s)", strings.TrimSpace(s[i:]))
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration (want e.g. \"30 seconds\", \"100 milliseconds\" or \"1m30s\")")
	}
	if d < 0 {
		return 0, errors.New("negative duration")
	}
	return d, nil
}

func looksGo(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) && !strings.ContainsRune(".nsuµmh", r) {
			return false
		}
	}
	return true
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// ParseSize parses a byte count: "1048576", or a whole number with a unit:
// B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), case
// insensitive, with or without a space ("64 MiB", "10MB").
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("not a size (want bytes, or a number with B, KB, MB, GB, KiB, MiB or GiB)")
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q (want B, KB, MB, GB, KiB, MiB or GiB)", strings.TrimSpace(s[i:]))
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

// ParseBool parses true/false, yes/no, on/off and 1/0, case-insensitively.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("not a boolean (want true or false)")
}

// expandEnv expands $VAR and ${VAR} from lookup; unknown variables stay as
// written.
func expandEnv(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		var name string
		var end int
		if s[i+1] == '{' {
			j := strings.IndexByte(s[i+2:], '}')
			if j < 0 {
				b.WriteByte(s[i])
				continue
			}
			name, end = s[i+2:i+2+j], i+3+j
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || (j > i+1 && unicode.IsDigit(rune(s[j])))) {
				j++
			}
			name, end = s[i+1:j], j
		}
		if v, ok := lookup(name); ok && name != "" {
			b.WriteString(v)
			i = end - 1
			continue
		}
		b.WriteString(s[i:end])
		i = end - 1
	}
	return b.String()
}
