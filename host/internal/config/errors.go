package config

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of configuration error, for use with errors.Is on an *Error.
var (
	// ErrSyntax is an INI line that is neither a section header, a
	// key = value line, a comment, a continuation nor blank; or a
	// duplicated section or key.
	ErrSyntax = errors.New("syntax error")
	// ErrNoSection is a [server:NAME] or [app:NAME] section that the file
	// lacks.
	ErrNoSection = errors.New("no such section")
	// ErrUnknownKey is a key written in the server section that wasmserve
	// does not know.
	ErrUnknownKey = errors.New("unknown key")
	// ErrMissingKey is a required key (factory) that a section lacks.
	ErrMissingKey = errors.New("missing required key")
)

// Error is an error in a configuration file. Its message names the file,
// the line when there is one, the section, and the key and value:
//
//	app.ini:5: [server:main] request_timeout = "10 parsecs": unknown unit "parsecs" (...)
//	app.ini:3: [server:main] unknown key "max_concurency" (did you mean "max_concurrency"?)
//	app.ini: [app:main] missing required key "factory"
type Error struct {
	File    string // the path as given to Load or Parse
	Line    int    // 1-based; 0 when the error is not tied to a line
	Section string // e.g. "server:main"; "" for file-level errors
	Key     string // lower-case key name; "" when none
	Value   string // the value after environment expansion
	Err     error  // the cause; see ErrSyntax, ErrNoSection, ErrUnknownKey, ErrMissingKey
}

// Error returns "FILE[:LINE]: [[SECTION] ][KEY = "VALUE": ]CAUSE". The
// key and value are left out when the cause is ErrUnknownKey or
// ErrMissingKey, whose messages already name the key.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Section != "" {
		fmt.Fprintf(&b, "[%s] ", e.Section)
	}
	if e.Key != "" && !errors.Is(e.Err, ErrUnknownKey) && !errors.Is(e.Err, ErrMissingKey) {
		fmt.Fprintf(&b, "%s = %q: ", e.Key, e.Value)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// kindError is an error of one of the kinds above with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
