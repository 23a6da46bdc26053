package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// GuestLogLimit is the guest_log_limit key: how many log records, and how
// many bytes of them, a guest may write in one request (or while an
// instance starts). A zero field is unlimited.
type GuestLogLimit struct {
	Lines int
	Bytes int64
}

// String formats the limit so that parseGuestLogLimit reads it back.
func (l GuestLogLimit) String() string {
	var parts []string
	if l.Lines > 0 {
		parts = append(parts, strconv.Itoa(l.Lines)+" lines")
	}
	if l.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(l.Bytes, 10))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// parseGuestLogLimit parses "N lines", a size, or both separated by a
// comma ("1000 lines, 1 MiB"); "0" (or "off", "unlimited") lifts both
// bounds. A part left out is unlimited.
func parseGuestLogLimit(v string) (GuestLogLimit, error) {
	var l GuestLogLimit
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "off", "unlimited":
		return l, nil
	case "":
		return l, errors.New(`empty (want "N lines", a size such as "1 MiB", both as "1000 lines, 1 MiB", or 0 for unlimited)`)
	}
	seenLines, seenSize := false, false
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		lower := strings.ToLower(part)
		if num, ok := strings.CutSuffix(lower, "lines"); ok || strings.HasSuffix(lower, "line") {
			if !ok {
				num = strings.TrimSuffix(lower, "line")
			}
			if seenLines {
				return l, fmt.Errorf("%q: line count given twice", part)
			}
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || n < 0 {
				return l, fmt.Errorf("%q: want a whole number of lines, such as \"1000 lines\"", part)
			}
			l.Lines, seenLines = n, true
			continue
		}
		if seenSize {
			return l, fmt.Errorf("%q: size given twice", part)
		}
		n, err := ParseSize(part)
		if err != nil {
			return l, fmt.Errorf("%q is neither \"N lines\" nor a size (%w)", part, err)
		}
		l.Bytes, seenSize = n, true
	}
	return l, nil
}
