"""A small HTTP app for the zero-dropped-requests test in tests/apps.rs.

usage: http_app.py PORT

Serves `GET /` with `ok` on 127.0.0.1:PORT, one thread per connection. On
SIGTERM it does what a well-behaved app does: it stops accepting, finishes
the requests in flight and exits 0 at once. That is exactly what drops the
requests a load balancer still sends it, unless drainit delays the SIGTERM.
"""
import http.server
import signal
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # The default backlog of 5 would drop connections under the test's load
    # on a busy machine, failing requests for a reason that is not the shutdown.
    request_queue_size = 128
    # Requests in flight finish before the process exits.
    daemon_threads = False
    block_on_close = True


server = Server(("127.0.0.1", int(sys.argv[1])), Handler)


def on_term(_number, _frame):
    # shutdown() waits for serve_forever() to return: not from its own thread.
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_term)
server.serve_forever(poll_interval=0.05)
server.server_close()
sys.exit(0)
