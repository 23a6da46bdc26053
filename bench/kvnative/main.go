// Command kvnative is the native baseline of the key-value benchmark: a Go
// net/http server answering POST /incr/KEY like guests/examples/counter-go,
// on the same backend with the same settings as wasmserve's kv stores: a
// bbolt file (default options, one Update per increment, values stored as
// an 8-byte expiry then decimal text), Redis through go-redis (INCRBY, no
// retries), or a map under a mutex.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

const prefix = "counter:"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	backend := flag.String("backend", "memory", "embedded, redis or memory")
	path := flag.String("path", "kv.db", "embedded store file")
	url := flag.String("url", "redis://127.0.0.1:6379/0", "Redis URL")
	pool := flag.Int("pool", 10, "Redis connections")
	flag.Parse()
	var incr func(ctx context.Context, key string) (int64, error)
	switch *backend {
	case "embedded":
		db, err := bolt.Open(*path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			log.Fatal(err)
		}
		bucket := []byte("kv")
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err })
		incr = func(_ context.Context, key string) (n int64, err error) {
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucket)
				var exp uint64
				if v := b.Get([]byte(key)); len(v) >= 8 {
					exp = binary.BigEndian.Uint64(v)
					n, _ = strconv.ParseInt(string(v[8:]), 10, 64)
				}
				n++
				out := binary.BigEndian.AppendUint64(nil, exp)
				return b.Put([]byte(key), strconv.AppendInt(out, n, 10))
			})
			return n, err
		}
	case "redis":
		o, err := redis.ParseURL(*url)
		if err != nil {
			log.Fatal(err)
		}
		o.PoolSize, o.MaxRetries, o.ContextTimeoutEnabled = *pool, -1, true
		o.ReadTimeout, o.WriteTimeout, o.DialTimeout = time.Second, time.Second, time.Second
		c := redis.NewClient(o)
		incr = func(ctx context.Context, key string) (int64, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return c.IncrBy(ctx, key, 1).Result()
		}
	default:
		var mu sync.Mutex
		m := map[string][]byte{}
		incr = func(_ context.Context, key string) (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			n, _ := strconv.ParseInt(string(m[key]), 10, 64)
			n++
			m[key] = strconv.AppendInt(nil, n, 10)
			return n, nil
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/incr/")
		if !ok || r.Method != http.MethodPost {
			w.Write([]byte("POST /incr/KEY\n"))
			return
		}
		n, err := incr(r.Context(), prefix+key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(strconv.FormatInt(n, 10) + "\n"))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
