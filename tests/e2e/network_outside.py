"""The "outside" of the network tests, run inside a network namespace the tests make: an HTTP
server, optionally an HTTPS one, and a tiny DNS server on one address. Standard library only.

    python3 network_outside.py ADDRESS HTTP_PORT NAME [HTTPS_PORT CERT_FILE KEY_FILE]
    python3 network_outside.py --dns ADDRESS NAME ANSWER

HTTP and HTTPS (every address of the namespace): GET / answers "outside", GET /bytes/N answers N
bytes, POST echoes its body. DNS (UDP 53): NAME (type A) resolves to ADDRESS, every other name is
NXDOMAIN. Prints "ready" when all listen. With --dns, only the DNS server, on ADDRESS (e.g. a
loopback address of the host, standing in for a local resolver), answering ANSWER for NAME.
"""
import http.server
import socket
import socketserver
import struct
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body, content_type="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/bytes/"):
            size = int(self.path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * 65536
            while size > 0:
                self.wfile.write(chunk[:size])
                size -= min(size, len(chunk))
            return
        self.answer(b"outside")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.answer(b"echo:" + self.rfile.read(length))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def dns(sock, answer, name):
    ip = socket.inet_aton(answer)
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 12:
            continue
        ident, flags = struct.unpack("!HH", query[:4])
        # The question: labels up to a zero byte, then type and class.
        end = 12
        labels = []
        while end < len(query) and query[end] != 0:
            labels.append(query[end + 1:end + 1 + query[end]].decode(errors="replace"))
            end += 1 + query[end]
        question = query[12:end + 5]
        qtype = struct.unpack("!H", query[end + 1:end + 3])[0] if end + 3 <= len(query) else 0
        found = ".".join(labels).lower() == name
        answers = b""
        if found and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ip
        rcode = 0 if found else 3
        header = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode, 1,
                             1 if answers else 0, 0, 0)
        sock.sendto(header + question + answers, peer)


def main():
    if sys.argv[1] == "--dns":
        address, name, answer = sys.argv[2], sys.argv[3].lower(), sys.argv[4]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 53))
        print("ready", flush=True)
        dns(sock, answer, name)
        return
    address, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3].lower()
    server = Server(("0.0.0.0", port), Handler)
    if len(sys.argv) > 4:
        import ssl
        https = Server(("0.0.0.0", int(sys.argv[4])), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[5], sys.argv[6])
        https.socket = context.wrap_socket(https.socket, server_side=True)
        threading.Thread(target=https.serve_forever, daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    threading.Thread(target=dns, args=(sock, address, name), daemon=True).start()
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
