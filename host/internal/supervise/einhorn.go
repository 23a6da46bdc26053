package supervise

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// einhornAckTimeout bounds connecting to and writing to Einhorn's command
// socket.
const einhornAckTimeout = 10 * time.Second

// EinhornAckLine returns the exact line a worker writes to acknowledge
// that it is up under `einhorn -m manual`, such as
// {"command":"worker:ack","pid":12345} followed by a newline.
func EinhornAckLine(pid int) string {
	return `{"command":"worker:ack","pid":` + strconv.Itoa(pid) + "}\n"
}

// EinhornAck sends Einhorn's manual worker ACK when the process runs under
// Einhorn: on the already-connected socket EINHORN_SOCK_FD (einhorn -g) if
// set, else on a new UNIX stream connection to EINHORN_SOCK_PATH. It writes
// EinhornAckLine(pid) once, never reads a reply (the master sends none),
// and closes its end. It returns sent == false and a nil error when
// neither variable is set.
//
// Call it once the app is loaded and every worker instance is up, before
// serving: Einhorn then stops the previous workers. Through an Env from
// OSEnv the ACK is sent at most once per process: later calls send
// nothing and return false, nil. Env values built by hand have no such
// guard.
func EinhornAck(env Env) (sent bool, err error) {
	if env.ack == nil {
		return einhornAck(env)
	}
	env.ack.Do(func() { sent, err = einhornAck(env) })
	return sent, err
}

func einhornAck(env Env) (bool, error) {
	line := []byte(EinhornAckLine(env.Getpid()))
	if v := env.Getenv("EINHORN_SOCK_FD"); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 0 {
			return false, fmt.Errorf("einhorn ack: EINHORN_SOCK_FD=%q is not a file descriptor", v)
		}
		f := env.File(fd, "EINHORN_SOCK_FD")
		if f == nil {
			return false, fmt.Errorf("einhorn ack: EINHORN_SOCK_FD=%d is not open", fd)
		}
		defer f.Close()
		f.SetWriteDeadline(time.Now().Add(einhornAckTimeout)) // fails harmlessly on a blocking fd
		if _, err := f.Write(line); err != nil {
			return false, fmt.Errorf("einhorn ack: write EINHORN_SOCK_FD=%d: %w", fd, err)
		}
		return true, nil
	}
	path := env.Getenv("EINHORN_SOCK_PATH")
	if path == "" {
		return false, nil
	}
	c, err := net.DialTimeout("unix", path, einhornAckTimeout)
	if err != nil {
		return false, fmt.Errorf("einhorn ack: socket[%s]: %w", path, err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(einhornAckTimeout))
	if _, err := c.Write(line); err != nil {
		return false, fmt.Errorf("einhorn ack: socket[%s]: write: %w", path, err)
	}
	return true, nil
}
