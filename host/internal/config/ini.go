package config

import (
	"strings"
)

// defaultSection holds keys merged into every other section.
const defaultSection = "DEFAULT"

// iniFile is an INI file read the way Python's configparser reads it,
// which is what baseplate-serve uses: "=" or ":" separates a key from its
// value, keys are case-insensitive, values are trimmed and kept verbatim
// (no inline comments, no quotes, no escapes), lines indented deeper than
// their key continue its value, and a section or a key appearing twice is
// an error. Unlike configparser, the line of every key is kept.
type iniFile struct {
	file     string
	sections []*iniSection // in file order, [DEFAULT] included
}

type iniSection struct {
	name string
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

// parseINI reads data; every error is an *Error wrapping ErrSyntax.
func parseINI(file string, data []byte) (*iniFile, error) {
	f := &iniFile{file: file}
	var (
		sec    *iniSection
		last   *iniKey // the key a continuation line extends
		indent int     // last's indentation
		blanks int     // blank lines since last's value
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
			last.value += strings.Repeat("\n", blanks+1) + line
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
			sec = &iniSection{name: name, line: n}
			f.sections = append(f.sections, sec)
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
		if prev := sec.key(name); prev != nil {
			return nil, syntax("duplicate key %q in [%s] (first on line %d)", name, sec.name, prev.line)
		}
		sec.keys = append(sec.keys, iniKey{name: name, value: strings.TrimSpace(line[i+1:]), line: n})
		last, indent = &sec.keys[len(sec.keys)-1], ind
	}
	return f, nil
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
