package config

import (
	"strings"

	"gopkg.in/ini.v1"
)

// defaultSection holds keys merged into every other section.
const defaultSection = "DEFAULT"

// iniFile is an INI file read the way Python's configparser reads it,
// which is what baseplate-serve uses: "=" or ":" separates a key from its
// value, keys are case-insensitive, values are trimmed and kept verbatim
// (no inline comments, no quotes, no escapes), lines indented deeper than
// their key continue its value, and a section or a key appearing twice is
// an error. Unlike configparser, the line of every key is kept.
//
// The values come from gopkg.in/ini.v1. A first pass over the lines keeps
// what ini.v1 does not: the line of every section and key, and the errors
// configparser's strict mode raises (a duplicate section or key, a key
// before any section, a line that is neither), each with its file:line.
// That pass also hands ini.v1 only what it reads the way configparser
// does: comment lines dropped, section and key lines unindented, and a
// blank line inside a multi-line value kept as a line of spaces (ini.v1
// would end the value there). The forms ini.v1 reads differently and that
// cannot be rewritten without guessing — a value starting with a backtick
// or """, a quoted key name, the key "-" — are refused by file:line.
type iniFile struct {
	file     string
	sections []*iniSection // in file order, [DEFAULT] included
}

type iniSection struct {
	name string
	raw  string // the name between the brackets, untrimmed, as ini.v1 keys it
	line int
	keys []iniKey // in file order
}

type iniKey struct {
	name, value string
	line        int
}

func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (s *iniSection) key(name string) *iniKey {
	for i := range s.keys {
		if s.keys[i].name == name {
			return &s.keys[i]
		}
	}
	return nil
}

// iniOptions make ini.v1 read configparser's dialect: keys are
// case-insensitive, section names are not; "=" and ":" both separate; no
// inline comments, no backslash continuation, quotes kept; indented lines
// continue a value.
var iniOptions = ini.LoadOptions{
	InsensitiveKeys:            true,
	IgnoreInlineComment:        true,
	IgnoreContinuation:         true,
	AllowPythonMultilineValues: true,
	PreserveSurroundedQuote:    true,
	KeyValueDelimiters:         "=:",
}

// parseINI reads data; every error is an *Error wrapping ErrSyntax.
func parseINI(file string, data []byte) (*iniFile, error) {
	f := &iniFile{file: file}
	var (
		sec    *iniSection
		last   *iniKey // the key a continuation line extends
		indent int     // last's indentation
		blanks int     // blank lines since last's value
		norm   strings.Builder
	)
	text := strings.TrimPrefix(string(data), "\ufeff")
	for n, raw := range strings.Split(text, "\n") {
		n++
		raw = strings.TrimSuffix(raw, "\r")
		line := strings.TrimSpace(raw)
		syntax := func(format string, args ...any) error {
			return &Error{File: file, Line: n, Err: errorf(ErrSyntax, "syntax error: "+format, args...)}
		}
		if line == "" {
			blanks++
			continue
		}
		if line[0] == '#' || line[0] == ';' {
			continue
		}
		ind := len(raw) - len(strings.TrimLeft(raw, " \t"))
		if last != nil && ind > indent {
			norm.WriteString(strings.Repeat(" \n", blanks))
			norm.WriteString("\t" + line + "\n")
			blanks = 0
			continue
		}
		last, blanks = nil, 0
		if line[0] == '[' {
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				return nil, syntax("section header %q has no closing ]", line)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != ';' && rest[0] != '#' {
				return nil, syntax("unexpected %q after section header", rest)
			}
			name := strings.TrimSpace(line[1:end])
			if name == "" {
				return nil, syntax("empty section name")
			}
			if prev := f.section(name); prev != nil {
				return nil, syntax("duplicate section [%s] (first on line %d)", name, prev.line)
			}
			sec = &iniSection{name: name, raw: line[1:end], line: n}
			f.sections = append(f.sections, sec)
			norm.WriteString(line[:end+1] + "\n")
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, syntax("%q is neither a section header nor a key = value line", line)
		}
		name := strings.ToLower(strings.TrimSpace(line[:i]))
		if name == "" {
			return nil, syntax("no key before %q", line[i:i+1])
		}
		if sec == nil {
			return nil, syntax("key %q before any [section]", name)
		}
		if c := name[0]; c == '"' || c == '`' {
			return nil, syntax("quoted key name %s: write the key without quotes", name)
		}
		if name == "-" {
			return nil, syntax(`key "-" is not supported: name the key`)
		}
		if prev := sec.key(name); prev != nil {
			return nil, syntax("duplicate key %q in [%s] (first on line %d)", name, sec.name, prev.line)
		}
		value := strings.TrimSpace(line[i+1:])
		if q := "`"; strings.HasPrefix(value, q) || strings.HasPrefix(value, `"""`) {
			if value[0] == '"' {
				q = `"""`
			}
			return nil, syntax("the value of %q starts with %s, which INI readers disagree on (Python's configparser keeps it as text, others read a quoted string): start the value with another character", name, q)
		}
		sec.keys = append(sec.keys, iniKey{name: name, line: n})
		last, indent = &sec.keys[len(sec.keys)-1], ind
		norm.WriteString(line + "\n")
	}
	opts := iniOptions
	// ini.v1 finds continuation lines by peeking into its read buffer:
	// a buffer holding the whole text lets a value be of any length.
	opts.ReaderBufferSize = norm.Len() + 1
	parsed, err := ini.LoadSources(opts, []byte(norm.String()))
	if err != nil {
		return nil, &Error{File: file, Err: errorf(ErrSyntax, "syntax error: %v", err)}
	}
	for _, s := range f.sections {
		ps, err := parsed.GetSection(s.raw)
		if err != nil {
			return nil, &Error{File: file, Line: s.line, Err: errorf(ErrSyntax, "syntax error: section [%s]: %v", s.name, err)}
		}
		for i := range s.keys {
			k := &s.keys[i]
			pk, err := ps.GetKey(k.name)
			if err != nil {
				return nil, &Error{File: file, Line: k.line, Err: errorf(ErrSyntax, "syntax error: key %q: %v", k.name, err)}
			}
			k.value = trimLines(pk.Value())
		}
	}
	return f, nil
}

// trimLines trims each line of a multi-line value, as configparser does
// (ini.v1 keeps continuation lines' indentation).
func trimLines(v string) string {
	if !strings.Contains(v, "\n") {
		return v
	}
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// merged returns the keys of section merged over [DEFAULT], the way
// configparser does: [DEFAULT]'s keys first, in their order, each
// replaced by the section's own value when it has one, then the section's
// other keys. Values are expanded with lookup.
func (f *iniFile) merged(s *iniSection, lookup func(string) (string, bool)) []iniKey {
	var out []iniKey
	idx := map[string]int{}
	add := func(k iniKey) {
		k.value = expandEnv(k.value, lookup)
		if i, ok := idx[k.name]; ok {
			out[i] = k
			return
		}
		idx[k.name] = len(out)
		out = append(out, k)
	}
	if d := f.section(defaultSection); d != nil && d != s {
		for _, k := range d.keys {
			add(k)
		}
	}
	for _, k := range s.keys {
		add(k)
	}
	return out
}
