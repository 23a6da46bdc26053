"""A Debian python3-thrift client of the thrift-go example.

usage: client.py GEN_PY_DIR HOST PORT {framed|header}
Prints one line per check; exits non-zero on the first failure.
"""
import sys

sys.path.insert(0, sys.argv[1])

from thrift.protocol import TBinaryProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol
from thrift.Thrift import TApplicationException
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType

from example import Example
from example.ttypes import EchoError
from baseplate.ttypes import IsHealthyRequest, IsHealthyProbe

host, port, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4]
sock = TSocket.TSocket(host, port)
sock.setTimeout(20000)
if mode == "framed":
    trans = TTransport.TFramedTransport(sock)
    proto = TBinaryProtocol.TBinaryProtocol(trans)
else:
    trans = sock
    proto = THeaderProtocol(sock, [THeaderClientType.HEADERS])
client = Example.Client(proto)
trans.open()

assert client.echo("hi from python") == "hi from python", "echo"
print("echo ok")
try:
    client.fail("py boom")
    raise SystemExit("fail did not raise")
except EchoError as e:
    assert e.message == "py boom", e.message
print("declared exception ok")
try:
    client.trap()
    raise SystemExit("trap did not raise")
except TApplicationException as e:
    assert e.type == TApplicationException.INTERNAL_ERROR, e.type
print("trap ok")
assert client.echo("after trap") == "after trap"
assert client.is_healthy(IsHealthyRequest(probe=IsHealthyProbe.LIVENESS)) is True
print("is_healthy ok")
trans.close()
