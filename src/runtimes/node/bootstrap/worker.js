'use strict';
// The customcode Node.js worker. It loads one workspace's generated module and runs its functions
// on request, many at a time. Frames (one JSON object per line) come in on fd 3 and go out on fd 4;
// see src/pool/protocol.hpp. stdout and stderr go to the service log.

const fs = require('fs');
const path = require('path');
const net = require('net');
const util = require('util');
const vm = require('vm');
const Module = require('module');
const { AsyncLocalStorage } = require('async_hooks');
const { performance } = require('perf_hooks');

const IN_FD = 3;
const OUT_FD = 4;

function parseArgs(argv) {
  const args = { module: null, builtins: [], logsMax: 256 * 1024, resultMax: 10 * 1024 * 1024, checkOnly: false };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--module': args.module = argv[++i]; break;
      case '--builtins': args.builtins = argv[++i].split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--logs-max': args.logsMax = Number(argv[++i]); break;
      case '--result-max': args.resultMax = Number(argv[++i]); break;
      case '--check-only': args.checkOnly = true; break;
      case '--spare': args.spare = true; break;
      default: break;
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));

// ---- Output ----

// Results are batched per turn of the event loop; logs are written at once so that the logs of a
// run stuck in a loop still reach the service before it times out.
let outBuffer = '';
let flushScheduled = false;

function writeAll(text) {
  const bytes = Buffer.from(text);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += fs.writeSync(OUT_FD, bytes, offset, bytes.length - offset);
    } catch (err) {
      if (err.code === 'EAGAIN') continue;
      process.exit(70);  // the service is gone
    }
  }
}

function flush() {
  flushScheduled = false;
  if (outBuffer.length === 0) return;
  const text = outBuffer;
  outBuffer = '';
  writeAll(text);
}

function send(frame) {
  outBuffer += JSON.stringify(frame) + '\n';
  if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flush);
  }
}

function sendNow(frame) {
  outBuffer += JSON.stringify(frame) + '\n';
  flush();
}

// ---- Logs ----

const runContext = new AsyncLocalStorage();
const originalStderrWrite = process.stderr.write.bind(process.stderr);

function emitLog(level, message) {
  const run = runContext.getStore();
  if (!run) {
    // Outside any run (e.g. a timer left behind): to the service log.
    originalStderrWrite(`[${level}] ${message}\n`);
    return;
  }
  if (run.logsTruncated) return;
  const bytes = Buffer.byteLength(message);
  if (run.logBytes + bytes > args.logsMax) {
    run.logsTruncated = true;
    sendNow({
      type: 'log', id: run.id, level: 'warn', timestamp: new Date().toISOString(),
      message: `[customcode] logs truncated: this run wrote more than ${args.logsMax} bytes of logs`,
    });
    return;
  }
  run.logBytes += bytes;
  sendNow({ type: 'log', id: run.id, level, message, timestamp: new Date().toISOString() });
}

function makeConsole() {
  const sink = (level) => new (require('stream').Writable)({
    write(chunk, _encoding, callback) {
      emitLog(level, chunk.toString().replace(/\n$/, ''));
      callback();
    },
  });
  // time, count, group, table, assert...: Node's own Console, writing into the run's logs.
  const base = new console.Console({ stdout: sink('log'), stderr: sink('error') });
  const levels = { log: 'log', info: 'info', warn: 'warn', error: 'error', debug: 'debug' };
  for (const [method, level] of Object.entries(levels)) {
    base[method] = (...values) => emitLog(level, util.format(...values));
  }
  base.trace = (...values) => {
    const stack = new Error().stack.split('\n').slice(2).join('\n');
    emitLog('debug', `Trace: ${util.format(...values)}\n${stack}`);
  };
  base.dir = (value, options) => emitLog('log', util.inspect(value, options));
  return base;
}

const capturingConsole = makeConsole();
// Packages the functions use log through the global console: capture them too.
Object.defineProperty(globalThis, 'console', { value: capturingConsole, writable: true, configurable: true });

// ---- require ----

const allowedBuiltins = new Set(args.builtins);

function userRequire(name) {
  if (typeof name !== 'string') throw new TypeError('require() expects a module name');
  const bare = name.startsWith('node:') ? name.slice(5) : name;
  if (Module.isBuiltin(name)) {
    const top = bare.split('/')[0];
    if (allowedBuiltins.has(top)) return require(name);
    throw Object.assign(new Error(
      `Cannot require "${name}": builtin module not allowed (NODE_BUILTIN_MODULES: ${[...allowedBuiltins].join(', ')})`),
    { code: 'MODULE_NOT_ALLOWED' });
  }
  if (name.startsWith('.') || name.startsWith('/') || name.includes(':') || name.includes('\\')) {
    throw Object.assign(new Error(
      `Cannot require "${name}": only the builtin modules in NODE_BUILTIN_MODULES (${[...allowedBuiltins].join(', ')}) ` +
      'and the npm packages installed for this workspace can be required'), { code: 'MODULE_NOT_ALLOWED' });
  }
  return requirePackage(name);
}

// ---- npm packages ----

// The workspace's own packages, installed when it was saved (docs/npm.md): <workspace>/node_modules
// only, never a parent directory's node_modules, the service's or a global folder.
const workspaceDir = realDirectory(args.module ? path.dirname(path.resolve(args.module)) : null);
const packagesDir = workspaceDir && path.join(workspaceDir, 'node_modules');
const resolvedPackages = new Map();  // specifier -> file, so a require in a hot function costs one lookup

function realDirectory(dir) {
  if (!dir) return null;
  try { return fs.realpathSync(dir); } catch { return dir; }
}

function isInside(file, dir) {
  return typeof file === 'string' && file.startsWith(dir + path.sep);
}

function packageNameOf(specifier) {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return /^(@[A-Za-z0-9~][A-Za-z0-9._~-]*\/)?[A-Za-z0-9~][A-Za-z0-9._~-]*$/.test(name) ? name : null;
}

function notInstalled(specifier, pkg, detail) {
  return Object.assign(new Error(
    `Cannot require "${specifier}": ${detail || `package "${pkg}" is not installed for this workspace`}. ` +
    'Packages are installed when the workspace is saved: those its code loads with require(\'...\') or ' +
    'import(\'...\') and those listed in "dependencies"; none when "disableNpmRegistry" is true.'),
  { code: 'MODULE_NOT_FOUND' });
}

function requirePackage(specifier) {
  const known = resolvedPackages.get(specifier);
  if (known) return require(known);
  const pkg = packageNameOf(specifier);
  if (!pkg || !packagesDir) throw notInstalled(specifier, pkg || specifier);
  const manifest = path.join(packagesDir, pkg, 'package.json');
  if (!fs.existsSync(manifest)) throw notInstalled(specifier, pkg);
  // Resolved from the package's own directory, whose lookup paths stop at the workspace (below).
  let file;
  try {
    file = Module.createRequire(manifest).resolve(specifier);
  } catch (err) {
    throw notInstalled(specifier, pkg, `it is not part of package "${pkg}" (${err.message.split('\n')[0]})`);
  }
  let real = file;
  try { real = fs.realpathSync(file); } catch { /* resolve() found it: keep its path */ }
  if (!isInside(real, packagesDir)) throw notInstalled(specifier, pkg);
  resolvedPackages.set(specifier, file);
  return require(file);
}

// Requires made by the packages themselves: their lookup paths are cut at the workspace directory,
// so a package missing a dependency fails rather than finding one outside the workspace.
if (workspaceDir && typeof Module._resolveLookupPaths === 'function') {
  const lookupPaths = Module._resolveLookupPaths;
  Module._resolveLookupPaths = function (request, parent) {
    const paths = lookupPaths.call(this, request, parent);
    if (!Array.isArray(paths) || !parent || !isInside(parent.filename, packagesDir)) return paths;
    return paths.filter((dir) => dir === workspaceDir || isInside(dir, workspaceDir));
  };
}

// ---- Runs ----

function describeError(err) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    const described = { name: String(err.name || 'Error'), message: String(err.message), stack: err.stack ? String(err.stack) : undefined };
    if (typeof err[RAISED_IN] === 'string') described.function = err[RAISED_IN];
    return described;
  }
  let message;
  try { message = typeof err === 'string' ? err : JSON.stringify(err); } catch { message = String(err); }
  return { name: 'Error', message: String(message) };
}

function serializeResult(value) {
  if (value === undefined) return 'null';
  const text = JSON.stringify(value);
  if (text === undefined) return 'null';  // functions, symbols
  return text;
}

let functions = Object.create(null);
const cache = {};
const runs = new Map();  // id -> run in flight, for a "cancel"

function handleRun(frame) {
  const fn = Object.prototype.hasOwnProperty.call(functions, frame.fn) ? functions[frame.fn] : undefined;
  const run = { id: frame.id, logBytes: 0, logsTruncated: false, cancelled: false };
  const started = performance.now();
  runs.set(frame.id, run);
  const finish = (answer) => {
    runs.delete(frame.id);
    answer.duration = Math.round(performance.now() - started);
    send(answer);
  };
  if (typeof fn !== 'function') {
    finish({ type: 'result', id: frame.id, ok: false, error: { name: 'NotFound', message: `Function "${frame.fn}" not found` } });
    return;
  }
  runContext.run(run, () => {
    let promise;
    try {
      promise = Promise.resolve(fn(frame.parameters || {}));
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then((value) => {
      let text;
      try {
        text = serializeResult(value);
      } catch (err) {
        finish({ type: 'result', id: frame.id, ok: false,
          error: { name: 'TypeError', message: `The result is not JSON-serialisable: ${err.message}` } });
        return;
      }
      if (Buffer.byteLength(text) > args.resultMax) {
        finish({ type: 'result', id: frame.id, ok: false, error: { name: 'ResultTooLarge',
          message: `The result is ${Buffer.byteLength(text)} bytes, more than FUNCTIONS_RESULT_MAX_SIZE (${args.resultMax} bytes)` } });
        return;
      }
      // The result is spliced in as text: it was serialised once, here.
      runs.delete(frame.id);
      const duration = Math.round(performance.now() - started);
      outBuffer += `{"type":"result","id":${frame.id},"ok":true,"duration":${duration},"result":${text}}\n`;
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
    }, (err) => {
      finish({ type: 'result', id: frame.id, ok: false, error: describeError(err) });
    });
  });
}

// ---- Calls to the other language ----

// A Python function of the workspace, called from JavaScript as `await other({x: 1})`: the call
// goes to the service ("call" frame), which runs it on the workspace's Python worker within what
// is left of this run's deadline and answers with a "called" frame. Parameters and the result
// cross as JSON. An error raised there is thrown here as an Error with the callee's name, message
// and stack; RAISED_IN names the function where it was raised, for the run's error report.
const RAISED_IN = Symbol('customcode.raisedIn');
const calls = new Map();  // the worker's call id -> { resolve, reject, site, fn }
let nextCallId = 1;

function callOther(fn, parameters) {
  const run = runContext.getStore();
  // Made here, so that its stack shows the caller's lines.
  const site = new Error();
  if (!run || run.id === 0) {
    site.message = `${fn}: a function of another language can only be called while a function runs`;
    return Promise.reject(site);
  }
  if (run.cancelled) {
    site.message = `${fn} was not called: this run was cancelled`;
    return Promise.reject(site);
  }
  if (parameters === undefined || parameters === null) parameters = {};
  if (typeof parameters !== 'object' || Array.isArray(parameters)) {
    return Promise.reject(new TypeError(`${fn}() takes one object of parameters, e.g. ${fn}({x: 1})`));
  }
  let text;
  try {
    text = JSON.stringify(parameters);
  } catch (err) {
    return Promise.reject(new TypeError(`The parameters of ${fn}() are not JSON-serialisable: ${err.message}`));
  }
  const id = nextCallId++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject, site, fn });
    outBuffer += `{"type":"call","id":${id},"run":${run.id},"fn":${JSON.stringify(fn)},"parameters":${text}}\n`;
    if (!flushScheduled) {
      flushScheduled = true;
      process.nextTick(flush);
    }
  });
}

function handleCalled(frame) {
  const call = calls.get(frame.id);
  if (!call) return;
  calls.delete(frame.id);
  if (frame.ok) {
    call.resolve(frame.result === undefined ? null : frame.result);
    return;
  }
  const error = frame.error && typeof frame.error === 'object' ? frame.error : {};
  const err = call.site;
  err.name = String(error.name || 'Error');
  err.message = String(error.message === undefined ? '' : error.message);
  // The caller's own frames: the worker's (this file, the run around the call) say nothing to the user.
  const here = String(err.stack || '').split('\n').slice(1).filter((line) => !line.includes(__filename)).join('\n');
  const there = error.stack ? String(error.stack).replace(/\n+$/, '') : `${err.name}: ${err.message}`;
  err.stack = `${there}\n    at ${call.fn} (called from JavaScript)${here ? `\n${here}` : ''}`;
  err[RAISED_IN] = typeof error.function === 'string' ? error.function : call.fn;
  call.reject(err);
}

// The binding of a Python function's name in the module: a stub that calls it, unless the name is
// a global of Node.js (fetch, process...), which the stub would hide from every function.
function makeStub(fn) {
  if (Object.prototype.hasOwnProperty.call(globalThis, fn)) return globalThis[fn];
  const stub = async (parameters) => callOther(fn, parameters);
  Object.defineProperty(stub, 'name', { value: fn });
  return stub;
}

function handleCancel(frame) {
  // A JavaScript function cannot be stopped from outside: it runs on, but its logs go nowhere and
  // the calls it makes from now on fail.
  const run = runs.get(frame.id);
  if (run) {
    run.cancelled = true;
    run.logsTruncated = true;
  }
}

// ---- Syntax checks ----

const AsyncFunction = (async function () {}).constructor;

function checkFunction(fn) {
  const params = (fn.parameters || []).join(', ');
  const source = `(async function ${fn.name}({${params}} = {}) {\n${fn.code}\n})`;
  try {
    new vm.Script(source, { filename: fn.name });
  } catch (err) {
    const lines = String(err.stack || '').split('\n');
    const where = /:(\d+)$/.exec(lines[0] || '');
    const codeLines = fn.code.split('\n');
    let line = where ? Number(where[1]) - 1 : 1;
    let column = lines[2] && lines[2].includes('^') ? lines[2].indexOf('^') + 1 : 1;
    if (line < 1) { line = 1; column = 1; }
    if (line > codeLines.length) {
      line = codeLines.length;
      column = codeLines[line - 1].length + 1;
    }
    return { function: fn.name, line, column, message: `${err.name}: ${err.message}` };
  }
  try {
    // The body must be exactly one function body: code that closes the function early and opens
    // another compiles above, but not here.
    new AsyncFunction(`{${params}} = {}`, fn.code);
  } catch (err) {
    return { function: fn.name, line: 1, column: 1, message: `${err.name}: ${err.message} (the code must be a function body)` };
  }
  return null;
}

function handleCheck(frame) {
  const errors = [];
  for (const fn of frame.functions || []) {
    const error = checkFunction(fn);
    if (error) errors.push(error);
  }
  send({ type: 'checked', id: frame.id, errors });
}

// ---- Frames in ----

function handleFrame(line) {
  let frame;
  try {
    frame = JSON.parse(line);
  } catch {
    originalStderrWrite(`customcode worker: ignoring a malformed frame\n`);
    return;
  }
  switch (frame.type) {
    case 'run': handleRun(frame); break;
    case 'ping': send({ type: 'pong', id: frame.id }); break;
    case 'check': handleCheck(frame); break;
    case 'load': handleLoad(frame); break;
    case 'called': handleCalled(frame); break;
    case 'cancel': handleCancel(frame); break;
    default: send({ type: 'error', id: frame.id, message: `unknown frame type ${frame.type}` });
  }
}

function listen() {
  const input = new net.Socket({ fd: IN_FD, readable: true, writable: false });
  let pending = '';
  input.setEncoding('utf8');
  input.on('data', (chunk) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.length > 0) handleFrame(line);
    }
  });
  // The service closes our input to retire us.
  input.on('end', () => { flush(); process.exit(0); });
  input.on('error', () => process.exit(0));
}

// A promise rejected with no handler, or an exception thrown from a timer, belongs to no run any
// more: log it and keep serving the other runs.
process.on('unhandledRejection', (reason) => {
  originalStderrWrite(`unhandled rejection: ${reason && reason.stack ? reason.stack : reason}\n`);
});
process.on('uncaughtException', (err) => {
  originalStderrWrite(`uncaught exception: ${err && err.stack ? err.stack : err}\n`);
});

function instantiate(factory) {
  functions = Object.assign(Object.create(null), factory(cache, userRequire, capturingConsole, makeStub));
}

// A spare worker starts without a workspace; the service hands it one by sending the generated
// module's text, so taking over a workspace costs a compile, not a Node start. Only workspaces
// without npm packages are handed over this way (a spare cannot see any workspace directory).
function handleLoad(frame) {
  try {
    if (Object.keys(functions).length > 0) throw new Error('this worker already serves a workspace');
    const module = new Module(frame.filename, null);
    module.filename = frame.filename;
    module.paths = [];
    module._compile(frame.source, frame.filename);
    instantiate(module.exports);
    send({ type: 'loaded', id: frame.id, ok: true });
  } catch (err) {
    send({ type: 'loaded', id: frame.id, ok: false, error: describeError(err) });
  }
}

// A spare warms the paths a workspace's first run takes (module compile, run context, promise
// settlement, result serialisation) while it waits, so that run does not pay for them.
async function warmUp() {
  const module = new Module('/customcode-warm-up.js', null);
  module.paths = [];
  module._compile('module.exports = function (cache, require, console) {\n' +
    'async function f({ a } = {}) { return "x" + a; }\nreturn { f };\n};\n', '/customcode-warm-up.js');
  const warm = module.exports({}, userRequire, capturingConsole);
  for (let i = 0; i < 3; i++) {
    const value = await runContext.run({ id: 0, logBytes: 0, logsTruncated: true }, () => warm.f({ a: i }));
    serializeResult({ value, logs: [], nested: [1, 2.5, true, null] });
  }
  JSON.parse('{"type":"run","id":1,"fn":"f","parameters":{"a":1}}');
}

function main() {
  if (!args.checkOnly && !args.spare) {
    try {
      instantiate(require(args.module));
    } catch (err) {
      sendNow({ type: 'fatal', message: `cannot load the workspace module: ${err && err.stack ? err.stack : err}` });
      process.exit(1);
    }
  }
  const ready = () => {
    listen();
    sendNow({ type: 'ready', pid: process.pid });
  };
  if (args.spare) warmUp().then(ready, ready);
  else ready();
}

main();
