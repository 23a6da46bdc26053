package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KVStore is one key-value store the app section configures with keys
// kv.NAME.*; see KVKeys for each key, its default and its meaning.
type KVStore struct {
	Name           string        // NAME in kv.NAME.*: letters, digits, '_' and '-'
	Backend        string        // kv.NAME.backend: "embedded", "redis" or "memory"
	Path           string        // kv.NAME.path: absolute path of the embedded file
	URL            string        // kv.NAME.url: redis://[:password@]host:port[/db]
	PoolSize       int           // kv.NAME.pool_size: Redis connections
	Timeout        time.Duration // kv.NAME.timeout: longest single operation
	ConnectTimeout time.Duration // kv.NAME.connect_timeout: Redis dial, embedded file lock wait
	MaxValueSize   int64         // kv.NAME.max_value_size: bytes
	MaxKeySize     int           // kv.NAME.max_key_size: bytes, prefix excluded
	Prefix         string        // kv.NAME.prefix: prepended to every key
}

// KVKey describes one kv.NAME.* key: Name is the part after kv.NAME.
type KVKey struct {
	Name    string
	Default string // as written in the INI file; "" when there is none
	Doc     string // one Markdown sentence for the configuration reference

	set func(l *loader, s *KVStore, v string) error
}

// KVKeys returns the kv.NAME.* keys in documentation order.
func KVKeys() []KVKey { return slices.Clone(kvKeys) }

// maxKVValue bounds kv.NAME.max_value_size: values cross the ABI as i32
// lengths.
const maxKVValue = 1 << 30

var kvKeys = []KVKey{
	{"backend", "embedded", "`embedded` (a bbolt file on local disk), `redis` or `memory` (per process, lost at exit)",
		func(_ *loader, s *KVStore, v string) error {
			switch c := strings.ToLower(v); c {
			case "embedded", "redis", "memory":
				s.Backend = c
				return nil
			}
			return fmt.Errorf("want %s", quoteList([]string{"embedded", "redis", "memory"}))
		}},
	{"path", "", "embedded store file, relative to the INI file's directory; default `kv-NAME.db` there; opened once per process and kept across reloads",
		func(l *loader, s *KVStore, v string) error {
			if v == "" {
				return errors.New("empty path")
			}
			s.Path = l.abs(v)
			return nil
		}},
	{"url", "", "Redis server, `redis://[:PASSWORD@]HOST:PORT[/DB]` (or `rediss://`, `unix://`); required with `backend = redis`",
		func(_ *loader, s *KVStore, v string) error {
			if !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") && !strings.HasPrefix(v, "unix://") {
				return errors.New("want a redis://, rediss:// or unix:// URL")
			}
			s.URL = v
			return nil
		}},
	{"pool_size", "10", "Redis connections kept per process, at least 1",
		func(_ *loader, s *KVStore, v string) (err error) {
			s.PoolSize, err = parseInt(v, 1, 10000)
			return err
		}},
	{"timeout", "1 second", "longest single store operation; a guest call is also bounded by the request's `request_timeout`",
		func(_ *loader, s *KVStore, v string) (err error) {
			s.Timeout, err = positiveDuration(v)
			return err
		}},
	{"connect_timeout", "1 second", "longest Redis connect, and longest wait for the embedded file's lock held by another process",
		func(_ *loader, s *KVStore, v string) (err error) {
			s.ConnectTimeout, err = positiveDuration(v)
			return err
		}},
	{"max_value_size", "1 MiB", "largest value a guest may store, at most 1 GiB",
		func(_ *loader, s *KVStore, v string) error {
			n, err := ParseSize(v)
			switch {
			case err != nil:
				return err
			case n < 1 || n > maxKVValue:
				return errors.New("must be from 1 byte to 1 GiB")
			}
			s.MaxValueSize = n
			return nil
		}},
	{"max_key_size", "1024", "longest key a guest may use, in bytes, without the prefix",
		func(_ *loader, s *KVStore, v string) (err error) {
			s.MaxKeySize, err = parseInt(v, 1, 1<<16)
			return err
		}},
	{"prefix", "", "prepended to every key the guest uses, so apps sharing a Redis database keep apart (e.g. `myapp:`)",
		func(_ *loader, s *KVStore, v string) error {
			s.Prefix = v
			return nil
		}},
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	return d, err
}

// kvStores parses the app section's kv.NAME.* keys into stores, in the
// order their names first appear. An unknown key under kv.NAME is refused
// with the nearest known key.
func (l *loader) kvStores(sec *section) ([]KVStore, error) {
	var stores []KVStore
	byName := map[string]int{}
	type setKey struct{ store, key string }
	set := map[setKey]bool{}
	for _, kv := range sortedByLine(sec.keys) {
		rest, ok := strings.CutPrefix(kv.name, "kv.")
		if !ok {
			continue
		}
		name, key, ok := strings.Cut(rest, ".")
		if !ok || !validStoreName(name) {
			return nil, l.errAt(sec, kv, errorf(ErrUnknownKey,
				"unknown key %q: key-value store keys are kv.NAME.KEY, NAME letters, digits, '_' or '-'", kv.name))
		}
		i, ok := byName[name]
		if !ok {
			i = len(stores)
			byName[name] = i
			stores = append(stores, KVStore{Name: name})
		}
		k, ok := lookupKVKey(key)
		if !ok {
			msg := fmt.Sprintf("unknown key %q", kv.name)
			if sg := suggestKV(key); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", "kv."+name+"."+sg)
			}
			return nil, l.errAt(sec, kv, errorf(ErrUnknownKey, "%s", msg))
		}
		if err := k.set(l, &stores[i], kv.value); err != nil {
			return nil, l.errAt(sec, kv, err)
		}
		set[setKey{name, key}] = true
	}
	for i := range stores {
		s := &stores[i]
		for _, k := range kvKeys {
			if !set[setKey{s.Name, k.Name}] && k.Default != "" {
				if err := k.set(l, s, k.Default); err != nil {
					panic(fmt.Sprintf("config: default %q of kv.NAME.%s: %v", k.Default, k.Name, err))
				}
			}
		}
		switch {
		case s.Backend == "embedded" && s.Path == "":
			s.Path = l.abs("kv-" + s.Name + ".db")
		case s.Backend == "redis" && s.URL == "":
			return nil, l.missing(sec, "kv."+s.Name+".url")
		}
	}
	return stores, nil
}

func lookupKVKey(name string) (KVKey, bool) {
	for _, k := range kvKeys {
		if k.Name == name {
			return k, true
		}
	}
	return KVKey{}, false
}

// suggestKV is suggest for the part of a kv.NAME.* key after NAME.
func suggestKV(name string) string {
	return nearest(name, len(kvKeys), func(i int) string { return kvKeys[i].Name })
}

func validStoreName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isNameByte(c) && c != '-' {
			return false
		}
	}
	return s != ""
}
