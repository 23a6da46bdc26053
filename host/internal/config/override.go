package config

import (
	"fmt"
	"sort"
	"strings"
)

// Where a server key's value comes from, in order of precedence: a
// command-line flag (Options.Set, Options.Bind), the environment
// (WASMSERVE_<KEY>), the INI file, then the default (Options.Defaults,
// else the key's own). PORT gives bind a value when none of the first
// three set it, as container platforms expect.

// EnvName returns the environment variable that overrides the server key
// name: WASMSERVE_ and the key upper-cased with dots as underscores, e.g.
// WASMSERVE_LOG_FORMAT for log.format.
func EnvName(name string) string {
	return "WASMSERVE_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
}

// FlagName returns the command-line flag that overrides the server key
// name in error messages: "--" and the key with dots and underscores as
// dashes, e.g. --log-format for log.format.
func FlagName(name string) string {
	return "--" + strings.NewReplacer(".", "-", "_", "-").Replace(name)
}

// Origin says where a server key's value came from: "--workers" (a flag),
// "WASMSERVE_WORKERS" or "PORT" (the environment), "FILE:LINE" (the INI
// file), or "default".
func (c *Config) Origin(key string) string {
	if o, ok := c.origins[key]; ok {
		return o
	}
	return "default"
}

// Reload reads the file c was loaded from again, with the same options
// (flags, defaults), and returns the new Config.
func Reload(c *Config) (*Config, error) {
	return Load(c.File, c.opts)
}

// applyOverrides sets the server keys given as flags or in the
// environment over what the file set, recording where each came from.
func (l *loader) applyOverrides(s *Server, set map[string]bool, origins map[string]string, opts Options) error {
	for _, k := range serverKeys {
		if v, ok := opts.Set[k.Name]; ok {
			if err := k.set(s, v); err != nil {
				return fmt.Errorf("%s %q: %w", FlagName(k.Name), v, err)
			}
			set[k.Name], origins[k.Name] = true, FlagName(k.Name)
			continue
		}
		name := EnvName(k.Name)
		if v, ok := l.env(name); ok {
			if err := k.set(s, v); err != nil {
				return fmt.Errorf("environment %s=%q: %w (unset it, or set a valid value)", name, v, err)
			}
			set[k.Name], origins[k.Name] = true, name
		}
	}
	if !set["bind"] {
		if port, ok := l.env("PORT"); ok && port != "" {
			e, err := ParseEndpoint(":" + port)
			if err != nil {
				return fmt.Errorf("environment PORT=%q (used because bind is not set): %w", port, err)
			}
			s.Bind, set["bind"], origins["bind"] = e, true, "PORT"
		}
	}
	return nil
}

// validateSet refuses flag values for keys that do not exist.
func validateSet(set map[string]string) error {
	var names []string
	for name := range set {
		if _, ok := lookupKey(name); !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		return fmt.Errorf("config: no server key %q", names[0])
	}
	return nil
}

// unsetVars returns the names of the $NAME and ${NAME} references in s
// that lookup does not know: expandEnv left them as written.
func unsetVars(s string, lookup func(string) (string, bool)) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		var name string
		if i+1 < len(s) && s[i+1] == '{' {
			j := strings.IndexByte(s[i+2:], '}')
			if j < 0 {
				continue
			}
			name = s[i+2 : i+2+j]
		} else {
			end := i + 1
			for end < len(s) && isNameByte(s[end]) {
				end++
			}
			name = s[i+1 : end]
		}
		if name == "" {
			continue
		}
		if _, ok := lookup(name); !ok {
			out = append(out, name)
		}
	}
	return out
}

// unsetHint wraps err with a hint when value still holds references to
// environment variables that are not set.
func unsetHint(err error, value string, lookup func(string) (string, bool)) error {
	names := unsetVars(value, lookup)
	switch len(names) {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w (the environment variable %s is unset: set it, or write the value itself)", err, names[0])
	}
	return fmt.Errorf("%w (the environment variables %s are unset: set them, or write the values themselves)", err, strings.Join(names, ", "))
}

// sectionHint suggests how to fix a missing [kind:name] section when the
// file has a section of the same kind under another name, or without one.
func sectionHint(f *iniFile, want string) string {
	kind, name, _ := strings.Cut(want, ":")
	for _, s := range f.sections {
		if s.name == kind {
			return fmt.Sprintf("; rename [%s] to [%s] (sections are named [%s:NAME])", s.name, want, kind)
		}
	}
	for _, s := range f.sections {
		if other, ok := strings.CutPrefix(s.name, kind+":"); ok && other != name {
			return fmt.Sprintf("; rename [%s] to [%s], or pass --%s-name %s", s.name, want, kind, other)
		}
	}
	return ""
}

// MisspelledEnv returns, for each WASMSERVE_* entry of environ (NAME=VALUE
// strings) that overrides no server key but is at most two edits away from
// one that does, the pair {name, nearest override}. Other WASMSERVE_*
// variables are left alone: they may belong to something else.
func MisspelledEnv(environ []string) [][2]string {
	var out [][2]string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "WASMSERVE_") {
			continue
		}
		best, bestD := "", 3
		for _, k := range serverKeys {
			e := EnvName(k.Name)
			if e == name {
				best = ""
				break
			}
			if d := editDistance(name, e); d < bestD {
				best, bestD = e, d
			}
		}
		if best != "" {
			out = append(out, [2]string{name, best})
		}
	}
	return out
}
