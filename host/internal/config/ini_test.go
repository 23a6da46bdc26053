package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestINILongMultilineValue: a multi-line value far longer than ini.v1's
// default read buffer (4 KiB) is read whole, with its inner blank line
// kept, its comment line dropped and every line trimmed.
func TestINILongMultilineValue(t *testing.T) {
	t.Parallel()
	var in, want strings.Builder
	in.WriteString("[app:main]\nfactory = x.wasm\nbig = line 0\n")
	want.WriteString("line 0")
	for i := 1; i < 3000; i++ {
		fmt.Fprintf(&in, "    line %d\n", i)
		fmt.Fprintf(&want, "\nline %d", i)
		if i == 1500 {
			in.WriteString("\n  ; a comment\n")
			want.WriteString("\n")
		}
	}
	in.WriteString("after = yes\n")
	f, err := parseINI("app.ini", []byte(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	s := f.section("app:main")
	if got := s.key("big"); got == nil || got.value != want.String() || got.line != 3 {
		t.Fatalf("big: got %+v", got)
	}
	if got := s.key("after"); got == nil || got.value != "yes" || got.line != 3005 {
		t.Fatalf("after: got %+v", got)
	}
}
