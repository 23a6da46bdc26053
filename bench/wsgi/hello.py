"""The bench's hello and echo routes as a WSGI app, for gunicorn."""


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/echo":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n)
    else:
        body = b"hello, world"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
