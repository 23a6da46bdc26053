// The health check of baseplate.thrift, as baseplate services serve it.
namespace go baseplate
namespace py baseplate

enum IsHealthyProbe {
    READINESS = 1,
    LIVENESS = 2,
    STARTUP = 3,
}

struct IsHealthyRequest {
    1: optional IsHealthyProbe probe;
}

service BaseplateServiceV2 {
    bool is_healthy(
        1: IsHealthyRequest request,
    ),
}
