"""Functions that use the network, one per client API, shared by the e2e network tests
(tests/e2e/test_network.py) and the container test (tests/deploy/test_container.py). A target is
anything with run(workspace, function, parameters) that answers like the service."""

JS_HTTP = """
const mod = require(url.startsWith('https:') ? 'https' : 'http');
return await new Promise((resolve) => {
  const req = mod.request(url, {method: method || 'GET', timeout: 4000, ...(ca ? {ca} : {})}, (res) => {
    let b = ''; res.on('data', (d) => b += d); res.on('end', () => resolve({status: res.statusCode, body: b}));
  });
  req.on('error', (e) => resolve({error: e.code || e.message}));
  req.on('timeout', () => { req.destroy(); resolve({error: 'timeout'}); });
  req.end(body || undefined);
});
"""

JS_FETCH = """
// fetch has no per-request CA: a function that talks to a self-signed server turns verification
// off, for the worker's whole process, so only for this call.
const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
if (insecure) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
try {
  const r = await fetch(url, {method: method || 'GET', body: body || undefined, signal: AbortSignal.timeout(4000)});
  return {status: r.status, body: await r.text()};
} catch (e) { return {error: String((e.cause && e.cause.code) || e.message)}; }
finally {
  if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
}
"""

JS_NET = """
const net = require('net');
const u = new URL(url);
return await new Promise((resolve) => {
  const s = net.connect({host: u.hostname.replace(/^\\[|\\]$/g, ''), port: Number(u.port)});
  let data = '';
  s.setTimeout(4000, () => { s.destroy(); resolve({error: 'timeout'}); });
  s.on('connect', () => s.write(`${method || 'GET'} ${u.pathname} HTTP/1.0\\r\\nHost: x\\r\\n` +
                             `Content-Length: ${Buffer.byteLength(body || '')}\\r\\n\\r\\n${body || ''}`));
  s.on('data', (d) => data += d);
  s.on('end', () => resolve({status: Number(data.split(' ')[1]), body: data.split('\\r\\n\\r\\n').slice(1).join('')}));
  s.on('error', (e) => resolve({error: e.code || e.message}));
});
"""

JS_DNS = """
const dns = require('dns').promises;
try {
  const looked = await dns.lookup(name, {family: 4});
  const resolved = await dns.resolve4(name);
  return {lookup: looked.address, resolve4: resolved};
} catch (e) { return {error: e.code || e.message}; }
"""

PY_URLLIB = """
import ssl, urllib.request
try:
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method or "GET")
    context = ssl.create_default_context(cadata=ca) if ca else None
    with urllib.request.urlopen(req, timeout=4, context=context) as r:
        return {"status": r.status, "body": r.read().decode()}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""

PY_HTTP_CLIENT = """
import http.client, urllib.parse
try:
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        import ssl
        c = http.client.HTTPSConnection(u.hostname, u.port, timeout=4, context=ssl.create_default_context(cadata=ca))
    else:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=4)
    c.request(method or "GET", u.path or "/", body=body)
    r = c.getresponse()
    return {"status": r.status, "body": r.read().decode()}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""

PY_SOCKET = """
import socket, urllib.parse
try:
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=4)
    payload = body or ""
    s.sendall(f"{method or 'GET'} {u.path or '/'} HTTP/1.0\\r\\nHost: x\\r\\nContent-Length: {len(payload)}\\r\\n\\r\\n{payload}".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\\r\\n\\r\\n")
    return {"status": int(head.split()[1]), "body": rest.decode()}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""

PY_DNS = """
import socket
try:
    return {"lookup": socket.gethostbyname(name)}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""

# The built-in modules the clients above import: a service that runs them allows these.
NODE_BUILTIN_MODULES = "http,https,url,util,zlib,dns,stream,buffer,crypto,net"
PYTHON_BUILTIN_MODULES = "json,urllib,http,socket,os,subprocess,errno,ssl,struct"

CLIENT_PARAMS = {"url": {"type": "string"}, "method": {"type": "string"}, "body": {"type": "string"},
                 "ca": {"type": "string"}, "insecure": {"type": "boolean"}}
CLIENTS = {
    "js_http": {"code": JS_HTTP, "parameters": CLIENT_PARAMS},
    "js_fetch": {"code": JS_FETCH, "parameters": CLIENT_PARAMS},
    "js_net": {"code": JS_NET, "parameters": CLIENT_PARAMS},
    "py_urllib": {"code": PY_URLLIB, "language": "python", "parameters": CLIENT_PARAMS},
    "py_http_client": {"code": PY_HTTP_CLIENT, "language": "python", "parameters": CLIENT_PARAMS},
    "py_socket": {"code": PY_SOCKET, "language": "python", "parameters": CLIENT_PARAMS},
}
RESOLVERS = {
    "js_dns": {"code": JS_DNS, "parameters": {"name": {"type": "string"}}},
    "py_dns": {"code": PY_DNS, "language": "python", "parameters": {"name": {"type": "string"}}},
}
PY_DNS_QUERY = """
import socket, struct
try:
    s = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.5)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\x00" + struct.pack("!HH", 1, 1)
    s.sendto(struct.pack("!HHHHHH", 7, 0x100, 1, 0, 0, 0) + question, (server, port))
    data, _ = s.recvfrom(512)
    return {"answer": socket.inet_ntoa(data[-4:]), "rcode": data[3] & 15}
except Exception as e:
    return {"error": type(e).__name__ + ": " + str(e)}
"""
DNS_QUERY = {"dns_query": {"code": PY_DNS_QUERY, "language": "python",
                           "parameters": {"server": {"type": "string"}, "port": {"type": "integer"},
                                          "name": {"type": "string"}}}}


def call(service, function, **parameters):
    """Runs one of CLIENTS or RESOLVERS, saved in the workspace "probe"."""
    r = service.run("probe", function, parameters)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def blocked(got):
    return "error" in got and got.get("status") is None
