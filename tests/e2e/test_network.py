"""The workers' network (WORKER_NETWORK, docs/security.md "Network").

The tests make their own "outside": a network namespace (unique name) holding an HTTP server and
a tiny DNS server on a test address in 198.18.0.0/15, joined to the host by a veth pair whose
only route is that /30 (plus one link-local address standing in for a metadata endpoint). No
traffic goes anywhere else: every other target is an address of this machine. The services
under test run in a private mount namespace whose /etc/resolv.conf names the outside's resolver,
so functions resolve names through the host's resolver configuration as in production.
"""
import ipaddress
import json
import os
import tempfile
import pathlib
import shutil
import subprocess
import sys
import threading
import http.server

import pytest

from conftest import Service, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import network_clients  # noqa: E402 - tests/network_clients.py
from network_clients import CLIENTS, DNS_QUERY, RESOLVERS, blocked, call  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUTSIDE_NAME = "outside.customcode.test"
HTTP_PORT = 8080
HTTPS_PORT = 8443
METADATA = "169.254.77.1"  # a link-local address, put on the outside namespace's side

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="making a network namespace and a veth pair needs root and iproute2")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def free_subnet():
    """A /30 of 198.18.0.0/15 that no interface here uses (other test runs may hold one)."""
    used = sh("ip", "-4", "-o", "addr").stdout
    start = os.getpid() % 16384
    for i in range(16384):
        net = ipaddress.ip_network("198.18.0.0/15").network_address + 4 * ((start + i) % 16384)
        if f" {net + 1}/" not in used and f" {net + 2}/" not in used:
            return net
    raise RuntimeError("no free /30 in 198.18.0.0/15")


class Outside:
    def __init__(self, tmp):
        pid = os.getpid()
        self.ns = f"ccnet{pid}"
        self.host_if, self.ns_if = f"ccn{pid}h", f"ccn{pid}o"
        net = free_subnet()
        self.address, self.host_address = str(net + 1), str(net + 2)
        # A self-signed certificate for the HTTPS server, for its name and its address.
        self.cert, self.key = tmp / "outside.crt", tmp / "outside.key"
        key = self.key
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={OUTSIDE_NAME}",
           "-addext", f"subjectAltName=DNS:{OUTSIDE_NAME},IP:{self.address}", "-keyout", str(key), "-out", str(self.cert))
        self.ca = self.cert.read_text()
        sh("ip", "netns", "add", self.ns)
        try:
            sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            sh("ip", "link", "set", self.ns_if, "netns", self.ns)
            sh("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_if)
            sh("ip", "link", "set", self.host_if, "up")
            sh("ip", "route", "add", f"{METADATA}/32", "dev", self.host_if)
            sh("ip", "-n", self.ns, "addr", "add", f"{self.address}/30", "dev", self.ns_if)
            sh("ip", "-n", self.ns, "addr", "add", f"{METADATA}/32", "dev", self.ns_if)
            sh("ip", "-n", self.ns, "link", "set", self.ns_if, "up")
            sh("ip", "-n", self.ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.ns, "route", "add", f"{self.host_address}/32", "dev", self.ns_if, check=False)
            self.server = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, os.path.join(HERE, "network_outside.py"),
                 self.address, str(HTTP_PORT), OUTSIDE_NAME, str(HTTPS_PORT), str(self.cert), str(key)],
                stdout=subprocess.PIPE, text=True)
            assert self.server.stdout.readline().strip() == "ready"
        except Exception:
            self.close()
            raise
        self.resolv = tmp / "resolv.conf"
        self.resolv.write_text(f"nameserver {self.address}\noptions timeout:2 attempts:1\n")
        self.resolv.chmod(0o644)

    def url(self, path="/"):
        return f"http://{self.address}:{HTTP_PORT}{path}"

    def https_url(self, path="/", host=None):
        return f"https://{host or self.address}:{HTTPS_PORT}{path}"

    def close(self):
        server = getattr(self, "server", None)
        if server:
            server.kill()
            server.wait()
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    o = Outside(tmp_path_factory.mktemp("outside"))
    yield o
    o.close()


class LocalServer:
    """Another server on this machine, on every address (IPv4 and IPv6); counts its requests."""

    def __init__(self, tls_context=None):
        counter = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                counter.requests += 1
                body = b"local"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        class Server(http.server.ThreadingHTTPServer):
            address_family = __import__("socket").AF_INET6

        self.httpd = Server(("::", 0), Handler)
        if tls_context:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def local_server():
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def local_tls_server(outside):
    """Another server on this machine, speaking HTTPS (the outside's certificate) on every address."""
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(outside.cert), str(outside.key))
    s = LocalServer(context)
    yield s
    s.close()


def host_addresses():
    """Every address of this machine's interfaces."""
    out = []
    for iface in json.loads(sh("ip", "-j", "addr").stdout):
        for a in iface.get("addr_info", []):
            if a["family"] == "inet6" and a["local"].startswith("fe80"):
                continue  # needs a scope id that means nothing inside the workers' namespace
            out.append(a["local"])
    return out


def url_host(address):
    return f"[{address}]" if ":" in address else address


VICTIM = {"secret": {"code": 'return "victim-code-unchanged";'}}
REPLACEMENT = json.dumps({"functions": {"secret": {"code": 'return "replaced";'}}})

ENV = {
    "NODE_BUILTIN_MODULES": network_clients.NODE_BUILTIN_MODULES,
    "PYTHON_BUILTIN_MODULES": network_clients.PYTHON_BUILTIN_MODULES,
    "SANDBOX": "bwrap",
    "HOST": "::",
}


UNPRIVILEGED_UID = 4242  # any uid without privileges; it needs no passwd entry


def network_service(binary, outside, data_base, name, unprivileged=False, tun_mode=0o666, resolv=None,
                    searchable=False, **env):
    """A service in a private mount namespace whose /etc/resolv.conf names the outside's resolver
    (or is `resolv`). `unprivileged`: run it as UNPRIVILEGED_UID, with a /dev/net/tun of
    `tun_mode` (some hosts, this one included, have a 0600 one that only root may open).
    `searchable`: its data directory under a directory others may search (the restricted mode of
    a root service reaches workspaces by path)."""
    if unprivileged or searchable:
        # data_base is a root-only 0700 directory: an unprivileged service needs a parent it can
        # search to reach its own data directory.
        data_base = pathlib.Path(tempfile.gettempdir()) / f"customcode-e2e-unprivileged-{os.getpid()}"
        data_base.mkdir(exist_ok=True)
        os.chmod(data_base, 0o711)
    data = data_base / f"network-{name}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    command = f"mount --bind {resolv or outside.resolv} /etc/resolv.conf"
    if unprivileged:
        tun = data_base / f"network-{name}.tun"
        if tun.exists():
            tun.unlink()
        os.mknod(tun, 0o020000 | tun_mode, os.makedev(10, 200))
        os.chmod(tun, tun_mode)
        os.chown(data, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        command += (f" && mount --bind {tun} /dev/net/tun && exec /usr/bin/setpriv --reuid {UNPRIVILEGED_UID} "
                    f"--regid {UNPRIVILEGED_UID} --clear-groups {binary}")
    else:
        command += f" && exec {binary}"
    wrapper = data_base / f"network-{name}.sh"
    wrapper.write_text(f"#!/bin/sh\nexec /usr/bin/unshare --mount --propagation private /bin/sh -c '{command}'\n")
    wrapper.chmod(0o755)
    service = Service(str(wrapper), data, {**ENV, **env})
    service.start()
    return service


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def isolated(request, binary, outside, data_base):
    """The service as root (workers as uid 65534) and as an unprivileged user (workers join the
    holder's user namespace first)."""
    service = network_service(binary, outside, data_base, f"isolated-{request.param}",
                              unprivileged=request.param == "unprivileged", WORKER_NETWORK="isolated")
    assert service.save("victim", VICTIM).status_code == 200
    assert service.save("probe", {**CLIENTS, **RESOLVERS}).status_code == 200
    yield service
    service.stop()


def assert_mode(service, mode):
    assert service.metric(f'customcode_worker_network{{mode="{mode}"}}') == 1, service.get("/metrics").text
    assert f"worker network: {mode}" in service.log() or mode == "host"


def assert_victim_unchanged(service):
    r = service.run("victim", "secret")
    assert r.status_code == 200 and r.json()["result"] == "victim-code-unchanged", r.text


# ---- isolated (the default) ----

@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_functions_reach_the_outside_by_address_and_by_name(isolated, outside, client):
    assert_mode(isolated, "isolated")
    for host in (outside.address, OUTSIDE_NAME):
        got = call(isolated, client, url=f"http://{host}:{HTTP_PORT}/")
        assert got == {"status": 200, "body": "outside"}, (host, got)
    got = call(isolated, client, url=outside.url("/echo"), method="POST", body="hello")
    assert got == {"status": 200, "body": "echo:hello"}, got


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
def test_names_resolve_through_the_hosts_resolver_configuration(isolated, outside, resolver):
    got = call(isolated, resolver, name=OUTSIDE_NAME)
    assert got["lookup"] == outside.address, got
    if "resolve4" in got:
        assert got["resolve4"] == [outside.address], got


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_functions_cannot_reach_the_service_or_other_local_servers(isolated, outside, local_server, client):
    targets = {"127.0.0.1", "localhost", "::1", outside.host_address, *host_addresses()}
    before = local_server.requests
    for target in sorted(targets):
        for port in (isolated.port, local_server.port):
            base = f"http://{url_host(target)}:{port}"
            got = call(isolated, client, url=base + "/v2/functions/victim")
            assert blocked(got), (target, port, got)
            got = call(isolated, client, url=base + "/v2/functions/victim", method="POST", body=REPLACEMENT)
            assert blocked(got), (target, port, got)
    assert local_server.requests == before
    assert_victim_unchanged(isolated)


HTTPS_CLIENTS = ["js_fetch", "js_http", "py_http_client", "py_urllib"]


def tls_trust(client, outside):
    """How a function trusts the outside's self-signed certificate: its CA (https, Python), or,
    for fetch, which takes no CA, verification turned off."""
    return {"insecure": True} if client == "js_fetch" else {"ca": outside.ca}


@pytest.mark.parametrize("client", HTTPS_CLIENTS)
def test_functions_reach_the_outside_over_https(isolated, outside, client):
    for host in (outside.address, OUTSIDE_NAME):
        got = call(isolated, client, url=outside.https_url("/", host), **tls_trust(client, outside))
        assert got == {"status": 200, "body": "outside"}, (host, got)
    got = call(isolated, client, url=outside.https_url("/echo"), method="POST", body="tls", **tls_trust(client, outside))
    assert got == {"status": 200, "body": "echo:tls"}, got


def test_https_verifies_the_certificate(isolated, outside):
    # Without the outside's CA the handshake fails: the requests above really were verified.
    for client in ("js_http", "py_urllib"):
        got = call(isolated, client, url=outside.https_url())
        assert blocked(got) and "CERT" in got["error"].upper(), (client, got)


@pytest.mark.parametrize("client", HTTPS_CLIENTS)
def test_https_cannot_reach_the_service_or_other_local_servers(isolated, outside, local_tls_server, client):
    targets = {"127.0.0.1", "localhost", "::1", outside.host_address, *host_addresses()}
    before = local_tls_server.requests
    for target in sorted(targets):
        for port in (isolated.port, local_tls_server.port):
            base = f"https://{url_host(target)}:{port}"
            got = call(isolated, client, url=base + "/v2/functions/victim", method="POST", body=REPLACEMENT,
                       **tls_trust(client, outside))
            # Refused before any TLS: a certificate or protocol error would mean it was reached.
            assert blocked(got) and "REFUSED" in got["error"].upper(), (target, port, got)
    assert local_tls_server.requests == before
    assert_victim_unchanged(isolated)


def test_link_local_addresses_are_blocked(isolated, outside):
    # The outside namespace answers on METADATA too: only the policy stands in the way.
    for client in ("js_http", "py_urllib"):
        got = call(isolated, client, url=f"http://{METADATA}:{HTTP_PORT}/latest/meta-data/")
        assert blocked(got), got


def test_workers_of_different_workspaces_cannot_talk_over_the_shared_loopback(isolated):
    listen = """
const net = require('net');
return await new Promise((resolve) => {
  const server = net.createServer((c) => c.end('from-listener'));
  server.on('error', (e) => resolve({error: e.code}));
  server.listen(4567, '0.0.0.0', () => resolve({listening: true}));
});
"""
    assert isolated.save("listener", {"listen": {"code": listen}}).status_code == 200
    r = isolated.run("listener", "listen")
    assert r.status_code == 200 and r.json()["result"] == {"listening": True}, r.text
    for target in ("127.0.0.1", "::1", *host_addresses()):
        got = call(isolated, "py_socket", url=f"http://{url_host(target)}:4567/")
        assert blocked(got), (target, got)
        got = call(isolated, "js_net", url=f"http://{url_host(target)}:4567/")
        assert blocked(got), (target, got)


UNDO = """
import os, socket, subprocess, errno
out = {}
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    out["raw"] = "created"
except OSError as e:
    out["raw"] = errno.errorcode.get(e.errno, str(e.errno))
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
    out["transparent"] = "set"
except OSError as e:
    out["transparent"] = errno.errorcode.get(e.errno, str(e.errno))
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host_address, 0))
    out["bind"] = "bound"
except OSError as e:
    out["bind"] = errno.errorcode.get(e.errno, str(e.errno))
for name, argv in {"nft": ["/usr/sbin/nft", "flush", "ruleset"],
                   "ip_addr": ["/usr/sbin/ip", "addr", "add", "127.0.0.2/8", "dev", "lo"],
                   "ip_link": ["/usr/sbin/ip", "link", "set", "lo", "down"],
                   "unshare": ["/usr/bin/unshare", "--user", "--map-root-user", "--net", "true"]}.items():
    if not os.path.exists(argv[0]):
        out[name] = "absent"
        continue
    p = subprocess.run(argv, capture_output=True, text=True)
    out[name] = p.returncode
return out
"""


def assert_the_policy_cannot_be_undone(service, outside):
    """Runs UNDO in `service`: every way of changing the rules fails, and the policy still holds."""
    assert service.save("undo", {"undo": {"code": UNDO, "language": "python",
                                          "parameters": {"host_address": {"type": "string"}}}}).status_code == 200
    r = service.run("undo", "undo", {"host_address": outside.host_address})
    assert r.status_code == 200, r.text
    got = r.json()["result"]
    assert got["raw"] == "EPERM" and got["transparent"] == "EPERM", got
    assert got["bind"] == "EADDRNOTAVAIL", got
    for tool in ("nft", "ip_addr", "ip_link", "unshare"):
        assert got[tool] != 0, got
    # And the policy still holds afterwards.
    got = call(service, "py_urllib", url=f"http://127.0.0.1:{service.port}/v2/functions/victim")
    assert blocked(got), got
    got = call(service, "py_urllib", url=outside.url())
    assert got == {"status": 200, "body": "outside"}, got


def test_a_worker_cannot_undo_the_policy(isolated, outside, local_server):
    assert_the_policy_cannot_be_undone(isolated, outside)


def test_downloads_10_mb_from_the_outside(isolated, outside):
    code = """
const http = require('http');
return await new Promise((resolve) => {
  const started = Date.now();
  http.get(url, (res) => { let n = 0; res.on('data', (d) => n += d.length);
                           res.on('end', () => resolve({bytes: n, ms: Date.now() - started})); })
      .on('error', (e) => resolve({error: e.code}));
});
"""
    assert isolated.save("download", {"get": {"code": code, "parameters": {"url": {"type": "string"}}}}).status_code == 200
    r = isolated.run("download", "get", {"url": outside.url(f"/bytes/{10 * 1024 * 1024}")})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["bytes"] == 10 * 1024 * 1024, r.text


# ---- the host's loopback: its resolver, allowed ports ----

DNS_FORWARD = "169.254.53.53"  # what the workers' resolv.conf names (src/network/resolver.hpp)
LOOPBACK_NAME = "via-loopback-resolver.customcode.test"


@pytest.fixture(scope="module")
def loopback_resolver(outside, tmp_path_factory):
    """A resolver on the host's loopback, as systemd-resolved's 127.0.0.53, a local dnsmasq or a
    pod's node-local cache: it answers LOOPBACK_NAME with the outside's address."""
    pid = os.getpid()
    address = f"127.{pid // 250 % 250 + 1}.{pid % 250 + 1}.53"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "network_outside.py"), "--dns", address,
                             LOOPBACK_NAME, outside.address], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        resolv = tmp_path_factory.mktemp("loopback-resolver") / "resolv.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:2 attempts:1\n")
        resolv.chmod(0o644)
        proc.address, proc.resolv = address, resolv
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def behind_loopback_resolver(request, binary, outside, data_base, loopback_resolver):
    """A service whose /etc/resolv.conf names only the resolver on the host's loopback."""
    service = network_service(binary, outside, data_base, f"loopback-resolver-{request.param}",
                              unprivileged=request.param == "unprivileged", resolv=loopback_resolver.resolv,
                              WORKER_NETWORK="isolated")
    assert service.save("probe", {**CLIENTS, **RESOLVERS, **DNS_QUERY}).status_code == 200
    yield service
    service.stop()


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
def test_a_resolver_on_the_hosts_loopback_answers_through_the_forward_address(behind_loopback_resolver, outside,
                                                                              resolver):
    service = behind_loopback_resolver
    assert_mode(service, "isolated")
    assert f"DNS forwarded to the service's resolver through {DNS_FORWARD}" in service.log()
    got = call(service, resolver, name=LOOPBACK_NAME)
    assert got["lookup"] == outside.address, got
    if "resolve4" in got:
        assert got["resolve4"] == [outside.address], got


@pytest.mark.parametrize("client", ["js_fetch", "js_http", "py_urllib", "py_socket"])
def test_functions_reach_the_outside_by_a_name_from_the_loopback_resolver(behind_loopback_resolver, client):
    got = call(behind_loopback_resolver, client, url=f"http://{LOOPBACK_NAME}:{HTTP_PORT}/")
    assert got == {"status": 200, "body": "outside"}, got


def test_only_the_resolver_is_reachable_on_the_hosts_loopback(behind_loopback_resolver, outside, loopback_resolver,
                                                             local_server):
    service = behind_loopback_resolver
    got = call(service, "dns_query", server=DNS_FORWARD, port=53, name=LOOPBACK_NAME)
    assert got == {"answer": outside.address, "rcode": 0}, got
    # The resolver's own address, another port of the forward address, loopback's port 53.
    for server, port in ((loopback_resolver.address, 53), ("127.0.0.1", 53), (DNS_FORWARD, 5353), ("::1", 53)):
        got = call(service, "dns_query", server=server, port=port, name=LOOPBACK_NAME)
        assert "error" in got, (server, port, got)
    # TCP to the forward address is not forwarded, nor is anything else of loopback reachable.
    before = local_server.requests
    for url in (f"http://{DNS_FORWARD}:53/", f"http://{loopback_resolver.address}:53/",
                f"http://127.0.0.1:{local_server.port}/", f"http://127.0.0.1:{service.port}/v2/functions/victim"):
        assert blocked(call(service, "py_socket", url=url)), url
    assert local_server.requests == before


PY_UDP_ECHO = """
import socket
try:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping", (host, port))
    return {"echo": s.recvfrom(512)[0].decode()}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""
UDP_ECHO = {"udp_echo": {"code": PY_UDP_ECHO, "language": "python",
                         "parameters": {"host": {"type": "string"}, "port": {"type": "integer"}}}}


class UdpEcho:
    """A UDP server on one loopback address of this machine (a metrics agent, say): echoes."""

    def __init__(self, host, port):
        import socket
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.received = 0
        self.closing = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import socket
        while not self.closing:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.received += 1
            self.sock.sendto(data, peer)

    def close(self):
        self.closing = True
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("user, allow, loopback", [("root", "127.0.0.1:{port}", "127.0.0.1"),
                                                   ("unprivileged", "127.0.0.1/32:{port}", "127.0.0.1"),
                                                   ("root", "[::1]:{port}", "::1")])
def test_allow_opens_one_port_of_the_hosts_loopback(binary, outside, local_server, data_base, user, allow, loopback):
    other = LocalServer()
    udp = UdpEcho(loopback, local_server.port)  # the same port number, over UDP
    other_loopback = "::1" if loopback == "127.0.0.1" else "127.0.0.1"
    service = network_service(binary, outside, data_base, f"allow-loopback-{user}-{loopback}",
                              unprivileged=user == "unprivileged",
                              WORKER_NETWORK_ALLOW=allow.format(port=local_server.port))
    try:
        assert_mode(service, "isolated")
        assert service.save("probe", {**CLIENTS, **UDP_ECHO}).status_code == 200
        assert service.save("victim", VICTIM).status_code == 200
        before = local_server.requests
        for client in ("py_urllib", "js_http", "js_fetch"):
            got = call(service, client, url=f"http://{url_host(loopback)}:{local_server.port}/")
            assert got == {"status": 200, "body": "local"}, (client, got)
        assert local_server.requests == before + 3
        assert call(service, "udp_echo", host=loopback, port=local_server.port) == {"echo": "ping"}
        assert udp.received == 1
        # Only that port, and only on that address: the service, another local server, the other
        # loopback address, the host's other addresses stay closed.
        for url in (f"http://{url_host(loopback)}:{service.port}/v2/functions/victim",
                    f"http://{url_host(loopback)}:{other.port}/", f"http://localhost:{other.port}/",
                    f"http://{url_host(other_loopback)}:{local_server.port}/",
                    f"http://{outside.host_address}:{local_server.port}/"):
            for client in ("py_urllib", "js_net"):
                got = call(service, client, url=url, method="POST", body=REPLACEMENT)
                assert blocked(got), (client, url, got)
        assert local_server.requests == before + 3 and other.requests == 0
        assert "error" in call(service, "udp_echo", host=loopback, port=other.port)
        assert udp.received == 1
        assert_victim_unchanged(service)
    finally:
        service.stop()
        other.close()
        udp.close()


def test_allow_opens_one_port_of_a_denied_range(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "allow-port", WORKER_NETWORK_DENY="198.18.0.0/15",
                              WORKER_NETWORK_ALLOW=f"{outside.address}:{HTTPS_PORT}")
    try:
        assert_mode(service, "isolated")
        assert service.save("probe", CLIENTS).status_code == 200
        for client in ("py_urllib", "js_http"):
            got = call(service, client, url=outside.https_url(), ca=outside.ca)
            assert got == {"status": 200, "body": "outside"}, (client, got)
            assert blocked(call(service, client, url=outside.url())), client
    finally:
        service.stop()


# ---- the host's addresses change ----

def test_an_address_added_to_the_host_later_is_denied_too(isolated, outside, local_server):
    """Without the watch, the new address would lead to the local server: pasta connects to it
    from the host, where it is a local address like any other."""
    # A new interface (a veth pair: not every kernel has the dummy driver) with a new address.
    new_if = f"ccw{os.getpid()}"
    address = str(free_subnet() + 1)
    changed = "the host's addresses changed, the rules are updated"
    sh("ip", "link", "add", new_if, "type", "veth", "peer", "name", new_if + "p")
    try:
        sh("ip", "link", "set", new_if, "up")
        sh("ip", "addr", "add", f"{address}/32", "dev", new_if)
        assert wait_for(lambda: any(changed in line and f" {address}/32" in line.split("no longer:")[0]
                                    for line in isolated.log().splitlines()), timeout=10), isolated.log()[-3000:]
        before = local_server.requests
        for client in ("py_urllib", "js_http"):
            for port in (local_server.port, isolated.port):
                got = call(isolated, client, url=f"http://{address}:{port}/v2/functions/victim", method="POST",
                           body=REPLACEMENT)
                assert blocked(got), (client, port, got)
        assert local_server.requests == before
        assert_victim_unchanged(isolated)
        sh("ip", "addr", "del", f"{address}/32", "dev", new_if)
        assert wait_for(lambda: any(changed in line and f" {address}/32" in line.split("no longer:")[-1]
                                    for line in isolated.log().splitlines()), timeout=10), isolated.log()[-3000:]
    finally:
        sh("ip", "link", "del", new_if, check=False)
    # Still isolated, still reaching the outside.
    assert call(isolated, "py_urllib", url=outside.url()) == {"status": 200, "body": "outside"}


# ---- the restricted sandbox (no namespaces of the workers' own) ----

@pytest.fixture(scope="module")
def restricted(binary, outside, data_base):
    """A root service whose workers run in the restricted mode: they join the network namespace
    directly, with a uid of their own."""
    service = network_service(binary, outside, data_base, "restricted", searchable=True, SANDBOX="restricted",
                              WORKER_NETWORK="isolated")
    assert service.save("victim", VICTIM).status_code == 200
    assert service.save("probe", {**CLIENTS, **RESOLVERS}).status_code == 200
    yield service
    service.stop()


def test_restricted_workers_reach_the_outside_by_address_and_by_name(restricted, outside):
    assert restricted.get("/sys/healthcheck").json()["isolation"] == "restricted"
    assert_mode(restricted, "isolated")
    for client in ("js_http", "js_fetch", "py_urllib", "py_socket"):
        for host in (outside.address, OUTSIDE_NAME):
            got = call(restricted, client, url=f"http://{host}:{HTTP_PORT}/")
            assert got == {"status": 200, "body": "outside"}, (client, host, got)
    for resolver in sorted(RESOLVERS):
        assert call(restricted, resolver, name=OUTSIDE_NAME)["lookup"] == outside.address


def test_restricted_workers_cannot_reach_the_service_or_other_local_servers(restricted, outside, local_server):
    before = local_server.requests
    for target in sorted({"127.0.0.1", "localhost", "::1", outside.host_address, *host_addresses()}):
        for port in (restricted.port, local_server.port):
            for client in ("js_http", "py_urllib"):
                got = call(restricted, client, url=f"http://{url_host(target)}:{port}/v2/functions/victim",
                           method="POST", body=REPLACEMENT)
                assert blocked(got), (client, target, port, got)
    assert local_server.requests == before
    assert_victim_unchanged(restricted)
    for client in ("js_http", "py_urllib"):
        assert blocked(call(restricted, client, url=f"http://{METADATA}:{HTTP_PORT}/latest/meta-data/"))


def test_a_restricted_worker_cannot_undo_the_policy(restricted, outside):
    assert_the_policy_cannot_be_undone(restricted, outside)


def test_restricted_workers_of_a_service_that_is_not_root_fall_back_loudly(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "restricted-unprivileged", unprivileged=True,
                              SANDBOX="restricted")
    try:
        assert service.get("/sys/healthcheck").json()["isolation"] == "restricted"
        assert_mode(service, "host")
        health = service.get("/sys/healthcheck").json()
        assert any("cannot isolate the workers' network" in w and "restricted workers of a service that is not root"
                   in w for w in health["details"]["warnings"]), health
    finally:
        service.stop()


# ---- the other modes ----

def test_none_blocks_everything(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "none", WORKER_NETWORK="none")
    try:
        assert_mode(service, "none")
        assert service.save("probe", CLIENTS).status_code == 200
        for client in ("js_http", "py_socket"):
            assert blocked(call(service, client, url=outside.url())), client
            assert blocked(call(service, client, url=f"http://127.0.0.1:{service.port}/sys/healthcheck")), client
    finally:
        service.stop()


def test_host_reaches_the_service_as_documented(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "host", WORKER_NETWORK="host")
    try:
        assert_mode(service, "host")
        health = service.get("/sys/healthcheck").json()
        assert any("WORKER_NETWORK=host" in w for w in health["details"]["warnings"]), health
        assert service.save("probe", CLIENTS).status_code == 200
        got = call(service, "py_urllib", url=f"http://127.0.0.1:{service.port}/sys/healthcheck")
        assert got["status"] == 200, got
        assert call(service, "js_http", url=outside.url()) == {"status": 200, "body": "outside"}
    finally:
        service.stop()


def test_deny_blocks_the_outside(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "deny", WORKER_NETWORK_DENY="10.0.0.0/8, 198.18.0.0/15")
    try:
        assert_mode(service, "isolated")
        assert service.save("probe", CLIENTS).status_code == 200
        for client in ("js_fetch", "py_http_client"):
            assert blocked(call(service, client, url=outside.url())), client
    finally:
        service.stop()


def test_allow_opens_a_local_address(binary, outside, local_server, data_base):
    service = network_service(binary, outside, data_base, "allow", WORKER_NETWORK_ALLOW=f"{outside.host_address}/32")
    try:
        assert_mode(service, "isolated")
        assert service.save("probe", CLIENTS).status_code == 200
        before = local_server.requests
        got = call(service, "py_urllib", url=f"http://{outside.host_address}:{local_server.port}/")
        assert got == {"status": 200, "body": "local"}, got
        assert local_server.requests == before + 1
        # Only that address: loopback stays closed.
        assert blocked(call(service, "py_urllib", url=f"http://127.0.0.1:{local_server.port}/"))
    finally:
        service.stop()


# ---- start-up ----

@pytest.mark.parametrize("env, message", [
    ({"WORKER_NETWORK": "open"}, "WORKER_NETWORK: must be isolated, host or none"),
    ({"WORKER_NETWORK_DENY": "10.0.0.0/33"}, "WORKER_NETWORK_DENY: \"10.0.0.0/33\" is not"),
    ({"WORKER_NETWORK_ALLOW": "example.com"}, "WORKER_NETWORK_ALLOW: \"example.com\" is not"),
    ({"WORKER_NETWORK_ALLOW": "127.0.0.1"}, "WORKER_NETWORK_ALLOW: \"127.0.0.1\" opens the host's loopback"),
    ({"WORKER_NETWORK_ALLOW": "10.0.0.1:99999"}, "WORKER_NETWORK_ALLOW: \"10.0.0.1:99999\" has a bad port"),
])
def test_bad_values_stop_start_up_naming_the_variable(make_service, env, message):
    service = make_service(env=env, start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert service.proc.wait(10) != 0
    assert message in service.log(), service.log()


def test_explicit_isolated_refuses_to_start_without_it(make_service):
    service = make_service(env={"SANDBOX": "none", "WORKER_NETWORK": "isolated"}, start=False)
    with pytest.raises(RuntimeError):
        service.start()
    assert service.proc.wait(10) != 0
    assert "WORKER_NETWORK=isolated: cannot be had here" in service.log(), service.log()


def test_default_falls_back_loudly_where_pasta_cannot_open_the_tun_device(binary, outside, data_base):
    service = network_service(binary, outside, data_base, "tun-0600", unprivileged=True, tun_mode=0o600)
    try:
        assert_mode(service, "host")
        health = service.get("/sys/healthcheck").json()
        assert any("cannot isolate the workers' network" in w and "pasta" in w
                   for w in health["details"]["warnings"]), health
    finally:
        service.stop()


def test_default_falls_back_loudly(make_service):
    service = make_service(env={"SANDBOX": "none"})
    assert_mode(service, "host")
    health = service.get("/sys/healthcheck").json()
    assert any("cannot isolate the workers' network" in w for w in health["details"]["warnings"]), health
    assert "cannot isolate the workers' network" in service.log()
