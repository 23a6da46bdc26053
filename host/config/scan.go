package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/ini.v1"
)

// scan is what a line-by-line pass finds: the sections in order and the
// line of every key, which the INI library does not keep.
type scan struct {
	sections []string
	lines    map[string]map[string]int
}

func (s *scan) line(section, key string) int {
	if n := s.lines[section][key]; n > 0 {
		return n
	}
	return s.lines[ini.DefaultSection][key]
}

// prescan checks the syntax line by line and indexes key lines.
func prescan(file string, data []byte) (*scan, error) {
	s := &scan{lines: map[string]map[string]int{ini.DefaultSection: {}}}
	section := ini.DefaultSection
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	syntax := func(format string, args ...any) error {
		return &Error{File: file, Line: n, Err: fmt.Errorf("syntax error: "+format, args...)}
	}
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, syntax("section header %q has no closing ]", line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" {
				return nil, syntax("empty section name")
			}
			if _, ok := s.lines[section]; !ok {
				s.lines[section] = map[string]int{}
				s.sections = append(s.sections, section)
			}
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, syntax("%q is neither a section header nor a key = value line", line)
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		if key == "" {
			return nil, syntax("line %q has no key before %q", line, line[i:i+1])
		}
		if _, dup := s.lines[section][key]; !dup {
			s.lines[section][key] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: file, Line: n + 1, Err: fmt.Errorf("syntax error: %w", err)}
	}
	return s, nil
}
