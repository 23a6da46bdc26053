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
// that it is up under `einhorn -m manual`.
func EinhornAckLine(pid int) string {
	return `{"command":"worker:ack","pid":` + strconv.Itoa(pid) + "}\n"
}

// EinhornAck sends Einhorn's manual worker ACK when the process runs under
// Einhorn: to the already-connected socket EINHORN_SOCK_FD (einhorn -g) if
// set, else to the UNIX stream socket EINHORN_SOCK_PATH. It writes the line
// once, never reads a reply, and closes its end. It reports false, nil when
// neither variable is set.
//
// Call it once, when the app is loaded and every worker instance is up, and
// before serving: Einhorn then stops the previous workers.
func EinhornAck(env Env) (sent bool, err error) {
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
