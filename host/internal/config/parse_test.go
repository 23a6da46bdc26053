package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"10", 10 * time.Second},
		{" 10 ", 10 * time.Second},
		{"1 millisecond", time.Millisecond},
		{"100 milliseconds", 100 * time.Millisecond},
		{"1 second", time.Second},
		{"30 seconds", 30 * time.Second},
		{"2 minutes", 2 * time.Minute},
		{"1 hour", time.Hour},
		{"3 days", 72 * time.Hour},
		{"30 Seconds", 30 * time.Second},
		{"250 ms", 250 * time.Millisecond},
		{"5 s", 5 * time.Second},
		{"5s", 5 * time.Second},
		{"2m", 2 * time.Minute},
		{"2 h", 2 * time.Hour},
		{"1d", 24 * time.Hour},
		{"0 seconds", 0},
		{"1m30s", 90 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"0s", 0},
	}
	for _, tt := range good {
		if got, err := ParseDuration(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, err string }{
		{"", "empty duration"},
		{"-1", "negative duration"},
		{"-5s", "negative duration"},
		{"10 parsecs", `unknown unit "parsecs" (want milliseconds, seconds, minutes, hours or days, or a Go duration such as 10s)`},
		{"10parsecs", `unknown unit "parsecs" (want milliseconds, seconds, minutes, hours or days, or a Go duration such as 10s)`},
		{"seconds", `not a duration (want e.g. "30 seconds", "100 milliseconds", "1m30s" or a number of seconds)`},
		{"1.5 seconds", `not a duration (want e.g. "30 seconds", "100 milliseconds", "1m30s" or a number of seconds)`},
		{"ten seconds", `not a duration (want e.g. "30 seconds", "100 milliseconds", "1m30s" or a number of seconds)`},
		{"99999999999999999999", "duration too large"},
		{"9999999999 days", "duration too large"},
	}
	for _, tt := range bad {
		if got, err := ParseDuration(tt.in); err == nil || err.Error() != tt.err {
			t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"512 B", 512},
		{"512b", 512},
		{"1 KB", 1000},
		{"10MB", 10_000_000},
		{"2 gb", 2_000_000_000},
		{"1 KiB", 1 << 10},
		{"64 MiB", 64 << 20},
		{"64mib", 64 << 20},
		{"2 GiB", 2 << 30},
		{" 7 ", 7},
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, tt := range good {
		if got, err := ParseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, err string }{
		{"", "not a size (want a number of bytes, or a whole number with B, KB, MB, GB, KiB, MiB or GiB)"},
		{"MiB", "not a size (want a number of bytes, or a whole number with B, KB, MB, GB, KiB, MiB or GiB)"},
		{"-1", "negative size"},
		{"1.5 MiB", `unknown unit ".5 MiB" (want B, KB, MB, GB, KiB, MiB or GiB)`},
		{"10 parsecs", `unknown unit "parsecs" (want B, KB, MB, GB, KiB, MiB or GiB)`},
		{"3k", `unknown unit "k" (want B, KB, MB, GB, KiB, MiB or GiB)`},
		{"9223372036854775808", "size too large"},
		{"9999999999 GiB", "size too large"},
	}
	for _, tt := range bad {
		if got, err := ParseSize(tt.in); err == nil || err.Error() != tt.err {
			t.Errorf("ParseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
		}
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	good := map[string]bool{
		"true": true, "True": true, "yes": true, "YES": true, "on": true, "1": true,
		"false": false, "FALSE": false, "no": false, "No": false, "off": false, "0": false,
	}
	for in, want := range good {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "maybe", "2", "y", "t", "enabled"} {
		if got, err := ParseBool(in); err == nil {
			t.Errorf("ParseBool(%q) = %v, want an error", in, got)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "a", "B_2": "b", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$A", "a"},
		{"${A}", "a"},
		{"x$A.y", "xa.y"},
		{"$B_2/$A", "b/a"},
		{"${A}${B_2}", "ab"},
		{"$EMPTY|", "|"},
		{"$AB", "$AB"},
		{"$NOPE ${NOPE}", "$NOPE ${NOPE}"},
		{"$", "$"},
		{"$$A", "$a"},
		{"${", "${"},
		{"${A", "${A"},
		{"${}", "${}"},
		{"%(A)s", "%(A)s"},
	}
	for _, tt := range tests {
		if got := expandEnv(tt.in, lookup); got != tt.want {
			t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
