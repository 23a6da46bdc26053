package supervise

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify(3) state messages to systemd (or anything that
// listens on $NOTIFY_SOCKET): one unixgram datagram per message.
//
// A nil or zero Notifier is valid and sends nothing, so callers need not
// check whether the process runs under systemd. Methods are safe for
// concurrent use.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // 0 = no watchdog requested for this process
}

// NewNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from env
// and unsets them so that child processes do not inherit them. It returns
// nil when NOTIFY_SOCKET is unset or empty. A leading '@' in NOTIFY_SOCKET
// names a socket in the abstract namespace.
//
// The watchdog interval is honoured only when WATCHDOG_PID is unset or is
// this process's pid.
func NewNotifier(env Env) *Notifier {
	path := env.Getenv("NOTIFY_SOCKET")
	usec := env.Getenv("WATCHDOG_USEC")
	wpid := env.Getenv("WATCHDOG_PID")
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		env.Unsetenv(k)
	}
	if path == "" {
		return nil
	}
	n := &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if us, err := strconv.ParseInt(usec, 10, 64); err == nil && us > 0 &&
		(wpid == "" || wpid == strconv.Itoa(env.Getpid())) {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// Enabled reports whether n sends messages: NOTIFY_SOCKET was set.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Socket returns the notification socket's address, or "" for a nil
// Notifier.
func (n *Notifier) Socket() string {
	if !n.Enabled() {
		return ""
	}
	return n.addr.Name
}

// WatchdogInterval returns the watchdog timeout systemd asked for, or 0.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// notifyTimeout bounds sending one datagram, so that a supervisor that
// stopped reading cannot block the caller.
const notifyTimeout = 5 * time.Second

// Notify sends state, newline-separated assignments such as "READY=1", as
// one datagram.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify socket[%s]: %w", n.addr.Name, err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(notifyTimeout))
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify socket[%s] state[%s]: %w", n.addr.Name, strings.ReplaceAll(state, "\n", " "), err)
	}
	return nil
}

// Ready tells the supervisor the service is serving (READY=1). Send it
// again after a reload.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells the supervisor graceful shutdown has begun (STOPPING=1).
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Reloading tells the supervisor a reload has begun: RELOADING=1 with the
// CLOCK_MONOTONIC time in MONOTONIC_USEC, as Type=notify-reload requires.
// Call Ready when the reload is over, whether it succeeded or not.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: clock_gettime: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1000
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Status sends a one-line description of the service's state
// (STATUS=s), shown by systemctl status. Newlines in s become spaces,
// because each line of a message is one assignment.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// Watchdog sends WATCHDOG=1 every half watchdog interval until ctx ends,
// each time only if alive (when not nil) reports that the process is
// making progress: a process whose main loop is stuck stops reporting, and
// systemd restarts it. It returns at once when no watchdog was requested.
// Send errors are passed to onError (if not nil) and do not stop the loop.
func (n *Notifier) Watchdog(ctx context.Context, alive func() bool, onError func(error)) {
	if n.WatchdogInterval() <= 0 {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if err := n.Notify("WATCHDOG=1"); err != nil && onError != nil {
				onError(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
