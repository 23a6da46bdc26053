// The wasmserve Thrift example: baseplate's health check plus calls that
// exercise every path through the host.
include "baseplate.thrift"

namespace go example
namespace py example

exception EchoError {
    1: string message,
}

service Example extends baseplate.BaseplateServiceV2 {
    // echo returns its argument.
    string echo(1: string message),
    // fail raises the declared EchoError with the message.
    string fail(1: string message) throws (1: EchoError err),
    // remember stores value in the instance; recall returns the last one.
    oneway void remember(1: string value),
    string recall(),
    // trap makes the guest trap.
    string trap(),
    // spin loops until request_timeout.
    string spin(),
    // pause sleeps for the given milliseconds (at most 10 s), then returns
    // "paused".
    string pause(1: i32 milliseconds),
    // lookup returns the THeader header and the app config value.
    string lookup(1: string header, 2: string key),
}
