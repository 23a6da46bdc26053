package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	URL            string // redis://[:password@]host:port[/db], rediss://, unix://
	PoolSize       int    // connections; 0 means 10
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Redis is the Redis backend, through a pooled go-redis client. Incr is
// INCRBY and CAS a Lua script, both atomic across every process sharing
// the server. Calls are not retried: an INCRBY whose reply was lost may
// have been applied, and retrying it would count twice. A connection that
// breaks (the server restarted) is dropped and the next call dials a new
// one, so calls recover without a restart of wasmserve.
type Redis struct {
	c *redis.Client
}

// casScript compares the current value (absent when ARGV[1] is "1", else
// equal to ARGV[2]) and then deletes (ARGV[3] "1") or sets ARGV[4], with a
// TTL of ARGV[5] milliseconds when positive. It returns 1 when it swapped.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif (not cur) or cur ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
return 1
`)

// OpenRedis creates the client and pings the server once. A server that
// does not answer is not an error: the store serves, its calls fail until
// the server is reachable, and OpenRedis logs a warning.
func OpenRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	o, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("url %s: %w", redactURL(opts.URL), err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	o.PoolSize = opts.PoolSize
	if o.PoolSize <= 0 {
		o.PoolSize = 10
	}
	if opts.Timeout > 0 {
		o.ReadTimeout, o.WriteTimeout = opts.Timeout, opts.Timeout
	}
	if opts.ConnectTimeout > 0 {
		o.DialTimeout = opts.ConnectTimeout
	}
	o.MaxRetries = -1
	o.DialerRetries = 1 // a call with the server down fails at once
	quietOnce.Do(func() { redis.SetLogger(debugLogger{}) })
	o.ContextTimeoutEnabled = true
	r := &Redis{c: redis.NewClient(o)}
	pctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if err := r.c.Ping(pctx).Err(); err != nil {
		opts.Logger.Warn("kv redis store unreachable at start-up; serving anyway, its calls fail with backend unavailable until it answers",
			"url", redactURL(opts.URL), "error", err)
	}
	return r, nil
}

var quietOnce sync.Once

// debugLogger sends go-redis's own log lines (failed dials while the
// server is down) to slog at DEBUG: every failed call is already counted
// and its error returned to the guest.
type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// redactURL hides a URL's password.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

func (r *Redis) wrap(err error) error {
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), isTimeout(err):
		return err
	case strings.Contains(err.Error(), "not an integer") || strings.Contains(err.Error(), "overflow"):
		return fmt.Errorf("%w: %w", ErrNotInteger, err)
	}
	return fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.wrap(err)
	}
	return v, true, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	return r.wrap(r.c.Set(ctx, key, v, ttlArg(ttl)).Err())
}

// ttlArg rounds a positive TTL below a millisecond up to one (go-redis
// would send no expiry for it).
func ttlArg(ttl time.Duration) time.Duration {
	if ttl > 0 && ttl < time.Millisecond {
		return time.Millisecond
	}
	return ttl
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) (bool, error) {
	n, err := r.c.Del(ctx, key).Result()
	return n > 0, r.wrap(err)
}

// Exists implements Store.
func (r *Redis) Exists(ctx context.Context, key string) (bool, error) {
	n, err := r.c.Exists(ctx, key).Result()
	return n > 0, r.wrap(err)
}

// Incr implements Store.
func (r *Redis) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	n, err := r.c.IncrBy(ctx, key, delta).Result()
	return n, r.wrap(err)
}

// CAS implements Store.
func (r *Redis) CAS(ctx context.Context, key string, old, new Value, ttl time.Duration) (bool, error) {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	ms := int64(0)
	if ttl > 0 {
		ms = max(1, ttl.Milliseconds())
	}
	n, err := casScript.Run(ctx, r.c, []string{key},
		flag(old.Absent), old.Data, flag(new.Absent), new.Data, strconv.FormatInt(ms, 10)).Int()
	return n == 1, r.wrap(err)
}

// Close implements Store.
func (r *Redis) Close() error { return r.c.Close() }
