"""The customcode Python worker.

It loads one workspace's generated module (functions.py) and runs its functions on request, many
at a time on one asyncio event loop. Frames (one JSON object per line) come in on fd 3 and go out
on fd 4; see src/pool/protocol.hpp. stdout and stderr go to the service log.

Each function is compiled from its code with the ast module: the code is parsed as it is (never
re-indented) and becomes the body of `async def NAME(p1=<default>, ...)`, so a line of the user's
code keeps its number in tracebacks and syntax errors. Stdlib only.
"""

import ast
import asyncio
import builtins
import contextvars
import io
import json
import linecache
import logging
import os
import select
import sys
import threading
import time
import traceback
import types

IN_FD = 3
OUT_FD = 4
WORKER_FILE = os.path.abspath(__file__)


def parse_args(argv):
    args = {"module": None, "builtins": [], "packages": [], "logs_max": 256 * 1024,
            "result_max": 10 * 1024 * 1024, "check_only": False, "spare": False}
    names = lambda text: [item.strip() for item in text.split(",") if item.strip()]
    i = 0
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if flag == "--module":
            args["module"], i = value, i + 1
        elif flag == "--builtins":
            args["builtins"], i = names(value), i + 1
        elif flag == "--packages":
            args["packages"], i = names(value), i + 1
        elif flag == "--logs-max":
            args["logs_max"], i = int(value), i + 1
        elif flag == "--result-max":
            args["result_max"], i = int(value), i + 1
        elif flag == "--check-only":
            args["check_only"] = True
        elif flag == "--spare":
            args["spare"] = True
        i += 1
    return args


ARGS = parse_args(sys.argv[1:])

# ---- Output ----

# Results are batched per turn of the event loop; logs are written at once so that the logs of a
# run stuck in a loop still reach the service before it times out. The lock is for logs written
# from threads (asyncio.to_thread).
_out_lock = threading.RLock()
_out_buffer = []
_flush_scheduled = False
_loop = None
_loop_thread = None


def _encode(frame):
    # Lone surrogates cannot be UTF-8: replaced rather than breaking the frame.
    return (json.dumps(frame, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "replace")


def _write_all(data):
    view = memoryview(data)
    while view:
        try:
            written = os.write(OUT_FD, view)
        except BlockingIOError:
            select.select([], [OUT_FD], [])
            continue
        except OSError:
            os._exit(70)  # the service is gone
        view = view[written:]


def flush():
    global _flush_scheduled
    with _out_lock:
        _flush_scheduled = False
        if not _out_buffer:
            return
        data = b"".join(_out_buffer)
        _out_buffer.clear()
        _write_all(data)


def _send_bytes(data):
    global _flush_scheduled
    with _out_lock:
        _out_buffer.append(data)
        if _loop is None:
            flush()
        elif not _flush_scheduled:
            _flush_scheduled = True
            if threading.get_ident() == _loop_thread:
                _loop.call_soon(flush)
            else:
                _loop.call_soon_threadsafe(flush)


def send(frame):
    _send_bytes(_encode(frame))


def send_now(frame):
    with _out_lock:
        _out_buffer.append(_encode(frame))
        flush()


# ---- Logs ----


class Run:
    __slots__ = ("id", "log_bytes", "truncated", "pending_out", "pending_err")

    def __init__(self, run_id):
        self.id = run_id
        self.log_bytes = 0
        self.truncated = False
        self.pending_out = ""
        self.pending_err = ""


# The run a piece of code works for. asyncio copies the context into every task it creates, so
# tasks a function starts log into its run, and interleaved runs never mix their logs.
current_run = contextvars.ContextVar("customcode_run", default=None)

_real_stdout = sys.stdout
_real_stderr = sys.stderr


def _timestamp():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000)


def emit_log(level, message):
    run = current_run.get()
    if run is None:
        # Outside any run (e.g. a task left behind): to the service log.
        _real_stderr.write("[%s] %s\n" % (level, message))
        _real_stderr.flush()
        return
    if run.truncated:
        return
    size = len(message.encode("utf-8", "replace"))
    if run.log_bytes + size > ARGS["logs_max"]:
        run.truncated = True
        send_now({"type": "log", "id": run.id, "level": "warn", "timestamp": _timestamp(),
                  "message": "[customcode] logs truncated: this run wrote more than %d bytes of logs"
                             % ARGS["logs_max"]})
        return
    run.log_bytes += size
    send_now({"type": "log", "id": run.id, "level": level, "message": message, "timestamp": _timestamp()})


class RunStream(io.TextIOBase):
    """sys.stdout / sys.stderr: lines written during a run go to its logs, others to the service
    log. Packages that write to sys.stdout themselves (e.g. DataFrame.info()) are captured too."""

    def __init__(self, real, level, pending):
        super().__init__()
        self._real = real
        self._level = level
        self._pending = pending  # the Run attribute holding a partial line

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        run = current_run.get()
        if run is None:
            self._real.write(text)
            self._real.flush()
            return len(text)
        pending = getattr(run, self._pending) + text
        *lines, rest = pending.split("\n")
        setattr(run, self._pending, rest)
        for line in lines:
            emit_log(self._level, line)
        return len(text)

    def flush(self):
        pass

    def finish(self, run):
        rest = getattr(run, self._pending)
        if rest:
            setattr(run, self._pending, "")
            emit_log(self._level, rest)


_stdout = RunStream(_real_stdout, "log", "pending_out")
_stderr = RunStream(_real_stderr, "error", "pending_err")


def user_print(*values, sep=" ", end="\n", file=None, flush=False):
    """print for functions: one log entry per call, like console.log."""
    if file is not None and file is not _stdout and file is not _stderr:
        return builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
    buffer = io.StringIO()
    builtins.print(*values, sep=sep, end=end, file=buffer)
    text = buffer.getvalue()
    if text.endswith("\n"):
        text = text[:-1]
    if current_run.get() is None:
        (file or _stdout).write(text + "\n")
    else:
        emit_log("error" if file is _stderr else "log", text)


class RunLogHandler(logging.Handler):
    LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
              logging.ERROR: "error", logging.CRITICAL: "error"}

    def emit(self, record):
        try:
            message = self.format(record)
            level = self.LEVELS.get(record.levelno)
            if level is None:
                level = "debug" if record.levelno < logging.INFO else "error" if record.levelno >= logging.ERROR \
                    else "info" if record.levelno < logging.WARNING else "warn"
            emit_log(level, message)
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


def install_capture():
    sys.stdout = _stdout
    sys.stderr = _stderr
    handler = RunLogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # INFO, not Python's WARNING: a function's logging.info() is meant to be seen.
    root.setLevel(logging.INFO)


# ---- Imports ----

_ALLOWED_BUILTINS = frozenset(ARGS["builtins"])
_ALLOWED_PACKAGES = frozenset(ARGS["packages"])
_real_import = builtins.__import__


def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    """__import__ of the functions' code only: packages keep the real one for their own imports."""
    if not isinstance(name, str):
        return _real_import(name, globals, locals, fromlist, level)  # raises its own TypeError
    if level != 0:
        raise ImportError("Relative imports are not available in functions", name=name)
    top = name.partition(".")[0]
    if top in _ALLOWED_BUILTINS or top in _ALLOWED_PACKAGES:
        return _real_import(name, globals, locals, fromlist, level)
    if top in sys.stdlib_module_names:
        variable, allowed = "PYTHON_BUILTIN_MODULES", _ALLOWED_BUILTINS
    else:
        variable, allowed = "PYTHON_PACKAGES_WHITELIST_IMPORT", _ALLOWED_PACKAGES
    raise ImportError(
        'Cannot import "%s": module "%s" is not allowed; %s lists the modules functions may import (%s)'
        % (name, top, variable, ", ".join(sorted(allowed)) or "none"), name=name)


def user_builtins():
    table = dict(builtins.__dict__)
    table["__import__"] = restricted_import
    table["print"] = user_print
    return table


# ---- Compiling functions ----

_MISSING = object()


class FunctionSpec:
    def __init__(self, name, parameters, code):
        self.name = name
        self.parameters = parameters  # [(name, default JSON text or None)]
        self.code = code
        self.names = frozenset(p for p, _ in parameters)


def _first_code_line_indented(code):
    for line in code.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return line[0] in " \t"
    return False


def parse_body(code, filename):
    """The statements of `code` as a function body, with the line numbers of `code`. Code indented
    as a whole (pasted from inside a def) is accepted, without re-indenting it."""
    if not _first_code_line_indented(code):
        return ast.parse(code, filename=filename).body
    try:
        tree = ast.parse("if 1:\n" + code, filename=filename)
    except SyntaxError as err:
        if err.lineno is not None:
            err.lineno = max(1, err.lineno - 1)
        if getattr(err, "end_lineno", None) is not None:
            err.end_lineno = max(1, err.end_lineno - 1)
        raise
    if len(tree.body) != 1:
        # A line less indented than the first: the body would be cut short.
        raise IndentationError("unexpected indent", (filename, 1, 1, code.splitlines()[0] if code else "", 1, 1))
    ast.increment_lineno(tree, -1)
    return tree.body[0].body


def _at_line_one(node):
    for child in ast.walk(node):
        if "lineno" in child._attributes:
            child.lineno = child.end_lineno = 1
            child.col_offset = child.end_col_offset = 0
    return node


def _at_line(node, line):
    for child in ast.walk(node):
        if "lineno" in child._attributes:
            child.lineno = child.end_lineno = line
            child.col_offset = child.end_col_offset = 0
    return node


def _own_scope(body):
    """The nodes of a function body that belong to its own scope: not those of the functions,
    lambdas and classes it defines, nor the loop variables of its comprehensions."""
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        for field, child in ast.iter_fields(node):
            if isinstance(node, ast.comprehension) and field == "target":
                continue
            stack.extend(item for item in (child if isinstance(child, list) else [child])
                         if isinstance(item, ast.AST))


def uses_result_variable(body):
    """The code-interpreter convention: a body that never returns a value (nor yields) but binds
    `result` gives the value of `result` as its result."""
    binds = False
    for node in _own_scope(body):
        if isinstance(node, ast.Return) and node.value is not None:
            return False
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return False
        if isinstance(node, ast.Name) and node.id == "result" and isinstance(node.ctx, ast.Store):
            binds = True
    return binds


def _return_result(line):
    # `result` may be unbound on the path taken: then the result is None, as without the convention.
    return _at_line(ast.parse("try:\n    return result\nexcept NameError:\n    return None").body[0], line)


class _BareReturns(ast.NodeTransformer):
    """`return` without a value, in the function's own scope, becomes the result return."""

    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef

    def visit_Return(self, node):
        return _return_result(node.lineno) if node.value is None else node


def compile_function(spec, namespace=None):
    """Compiles `spec` into namespace[spec.name], or only checks it without a namespace. Raises
    SyntaxError with the lines of the user's code."""
    filename = spec.name
    body = parse_body(spec.code, filename)
    if uses_result_variable(body):
        last_line = max((getattr(node, "end_lineno", 1) or 1 for node in body), default=1)
        body = [_BareReturns().visit(statement) for statement in body] + [_return_result(last_line)]
    defaults = []
    prelude = []
    for name, default_text in spec.parameters:
        value = None if default_text is None else json.loads(default_text)
        if isinstance(value, (dict, list)):
            # A fresh copy per call: a function that mutates its default must not see it changed
            # on the next run.
            defaults.append(_at_line_one(ast.Name(id="__customcode_missing__", ctx=ast.Load())))
            prelude.extend(_at_line_one(statement) for statement in ast.parse(
                "if %s is __customcode_missing__: %s = __customcode_default__(%r, %r)"
                % (name, name, spec.name, name)).body)
        else:
            defaults.append(_at_line_one(ast.Constant(value=value)))
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[:1] + prelude + body[1:]  # the docstring stays first
    else:
        body = prelude + body
    if not body:
        body = [_at_line_one(ast.Pass())]
    last = max((getattr(node, "end_lineno", 1) or 1 for node in body), default=1)
    function = ast.AsyncFunctionDef(
        name=spec.name,
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=name) for name, _ in spec.parameters],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=defaults),
        body=body, decorator_list=[], returns=None, type_comment=None,
        lineno=1, col_offset=0, end_lineno=last, end_col_offset=0)
    _at_line_one(function.args)
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    code_object = compile(module, filename, "exec", dont_inherit=True)
    if namespace is None:
        return
    # Tracebacks then show the user's lines.
    linecache.cache[filename] = (len(spec.code), None, spec.code.splitlines(True), filename)
    exec(code_object, namespace)


def syntax_error_of(spec, err):
    lines = spec.code.split("\n")
    if isinstance(err, SyntaxError):
        line = err.lineno or 1
        column = err.offset or 1
        message = "%s: %s" % (type(err).__name__, err.msg)
    else:
        line, column = 1, 1
        message = "SyntaxError: %s" % err
    if line < 1:
        line, column = 1, 1
    if line > len(lines):
        line = len(lines)
        column = len(lines[-1]) + 1
    return {"function": spec.name, "line": line, "column": max(1, column), "message": message}


def check_function(spec):
    try:
        compile_function(spec)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as err:
        return syntax_error_of(spec, err)
    return None


# ---- The workspace ----

cache = {}
functions = {}  # name -> (FunctionSpec, async function)


def load_specs(path, source=None):
    """The module's functions, and the JavaScript functions it may call: [(name, [parameter])]."""
    if source is None:
        with open(path, encoding="utf-8") as file:
            source = file.read()
    tree = ast.parse(source, filename=path)
    specs, calls = None, []
    for statement in tree.body:
        if not isinstance(statement, ast.Assign):
            continue
        targets = {t.id for t in statement.targets if isinstance(t, ast.Name)}
        if "FUNCTIONS" in targets:
            items = ast.literal_eval(statement.value)
            specs = [FunctionSpec(item["name"], [(p, d) for p, d in item["parameters"]], item["code"])
                     for item in items]
        elif "CALLS" in targets:
            calls = [(str(name), [str(p) for p in parameters])
                     for name, parameters in ast.literal_eval(statement.value)]
    if specs is None:
        raise ValueError("%s has no FUNCTIONS" % path)
    return specs, calls


def load_workspace(path, source=None):
    """Loads the generated module at `path`; a spare is sent its text (`source`), as it cannot see
    the workspace's directory."""
    specs, calls = load_specs(path, source)
    fresh_defaults = {spec.name: dict(spec.parameters) for spec in specs}

    def default_of(function, parameter):
        return json.loads(fresh_defaults[function][parameter])

    # A real module, so that what looks a class up by its module (dataclasses, typing, pickle)
    # finds the functions' namespace.
    module = types.ModuleType("functions")
    module.__file__ = path
    sys.modules["functions"] = module
    namespace = module.__dict__
    namespace.update({
        "__builtins__": user_builtins(),
        "cache": cache,
        "__customcode_missing__": _MISSING,
        "__customcode_default__": default_of,
    })
    for name, parameters in calls:
        # A builtin keeps its name (a JavaScript function called `print` must not hide print).
        if name not in namespace and name not in namespace["__builtins__"]:
            namespace[name] = make_stub(name, parameters)
    for spec in specs:
        try:
            compile_function(spec, namespace)
            functions[spec.name] = (spec, namespace[spec.name])
        except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as err:
            # Saved before its syntax was checked: this function fails, the others still run.
            problem = syntax_error_of(spec, err)
            functions[spec.name] = (spec, problem)
    preload(specs)


def preload(specs):
    """Imports the allowed modules the code imports, so the first run does not pay for them."""
    wanted = set()
    for spec in specs:
        try:
            tree = ast.parse(spec.code) if not _first_code_line_indented(spec.code) else \
                ast.parse("if 1:\n" + spec.code)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                wanted.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                wanted.add(node.module)
    for name in sorted(wanted):
        top = name.partition(".")[0]
        if top in _ALLOWED_BUILTINS or top in _ALLOWED_PACKAGES:
            try:
                _real_import(name)
            except Exception:  # noqa: BLE001 - the run that imports it reports the error
                pass


# ---- Calls to the other language ----

# A JavaScript function of the workspace, called from Python as `await other(x=1)` (or
# positionally, in the order of its declared parameters): the call goes to the service ("call"
# frame), which runs it on the workspace's Node.js worker within what is left of this run's
# deadline and answers with a "called" frame. Parameters and the result cross as JSON; arguments
# left out take the callee's defaults there. An error thrown there is raised here as an exception
# whose type has the callee's error name, with its message and stack.

_calls = {}  # the worker's call id -> future of the "called" answer
_next_call_id = 1
_error_types = {}  # error name -> its exception type, so that `except type(err)` works twice
_PYTHON_TOO = frozenset({
    "ArithmeticError", "AssertionError", "AttributeError", "ConnectionError", "FileNotFoundError",
    "IndexError", "LookupError", "NameError", "NotImplementedError", "OverflowError",
    "PermissionError", "RecursionError", "ReferenceError", "RuntimeError", "TimeoutError",
    "TypeError", "ValueError", "ZeroDivisionError"})


class CalledFunctionError(Exception):
    """An error raised by a function of the other language that a Python function called. Its
    type's name is the callee's error name (TypeError, RangeError, ...); `stack` is the callee's
    stack, `function` the function where it was raised."""

    def __init__(self, message, stack, function):
        Exception.__init__(self, message)
        self.message = message
        self.stack = stack
        self.function = function


def _called_error(error, function):
    name = str(error.get("name") or "Error")
    kind = _error_types.get(name)
    if kind is None:
        # A name Python also has is caught by `except` of that type too (not StopIteration, which
        # a coroutine may not raise, nor types whose str() is not their message, like KeyError).
        bases = (CalledFunctionError, getattr(builtins, name)) if name in _PYTHON_TOO else (CalledFunctionError,)
        kind = type(name, bases, {"__module__": "customcode"})
        if len(_error_types) < 256:
            _error_types[name] = kind
    message = error.get("message")
    raised_in = error.get("function")
    return kind("" if message is None else str(message), str(error.get("stack") or ""),
                raised_in if isinstance(raised_in, str) else function)


def make_stub(name, parameters):
    declared = tuple(parameters)

    async def stub(*args, **kwargs):
        if len(args) > len(declared):
            raise TypeError("%s() takes %d positional argument%s but %d were given"
                            % (name, len(declared), "" if len(declared) == 1 else "s", len(args)))
        arguments = dict(zip(declared, args))
        for key, value in kwargs.items():
            if key in arguments:
                raise TypeError("%s() got multiple values for argument '%s'" % (name, key))
            if key not in declared:
                raise TypeError("%s() got an unexpected keyword argument '%s'" % (name, key))
            arguments[key] = value
        return await call_other(name, arguments)

    stub.__name__ = stub.__qualname__ = name
    return stub


async def call_other(name, arguments):
    global _next_call_id
    run = current_run.get()
    if run is None or run.id is None:
        raise RuntimeError("%s: a function of another language can only be called while a function runs" % name)
    try:
        text = serialize_result(arguments)
    except (TypeError, ValueError, RecursionError) as err:
        raise TypeError("The arguments of %s() are not JSON-serialisable: %s" % (name, err)) from None
    call_id = _next_call_id
    _next_call_id += 1
    answer = _loop.create_future()
    _calls[call_id] = answer
    try:
        _send_bytes(('{"type":"call","id":%d,"run":%s,"fn":%s,"parameters":%s}\n'
                     % (call_id, json.dumps(run.id), json.dumps(name), text)).encode("utf-8", "replace"))
        frame = await answer
    finally:
        _calls.pop(call_id, None)
    if frame.get("ok") is True:
        return frame.get("result")
    error = frame.get("error")
    raise _called_error(error if isinstance(error, dict) else {}, name)


def handle_called(frame):
    answer = _calls.pop(frame.get("id"), None)
    if answer is not None and not answer.done():
        answer.set_result(frame)


def handle_cancel(frame):
    # The run's caller is gone: its task is cancelled where it awaits (a function busy in a loop
    # is the service's to kill).
    task = _runs.get(frame.get("id"))
    if task is not None:
        task.cancel()


# ---- Runs ----


def _finite(value):
    # JSON has no NaN or Infinity: null, as JavaScript's JSON.stringify does.
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value):
    # numpy scalars and arrays (np.int64(3), np.arange(3)) are what numerical code returns.
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def serialize_result(value):
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=_json_default)
    except ValueError as err:
        if "Out of range float" not in str(err):
            raise
        return json.dumps(_finite(json.loads(json.dumps(value, default=_json_default))),
                          ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def describe_error(err):
    report = traceback.TracebackException(type(err), err, err.__traceback__)
    # The worker's own frames (the run around the call, the import guard) say nothing to the user.
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if frame.filename != WORKER_FILE])
    stack = "".join(report.format())
    if isinstance(err, CalledFunctionError):
        # The callee's stack first, then the Python lines that called it.
        return {"name": type(err).__name__, "message": err.message, "function": err.function,
                "stack": (err.stack.rstrip("\n") + "\n" if err.stack else "") + stack}
    return {"name": type(err).__name__, "message": str(err), "stack": stack}


async def run_function(frame):
    run = Run(frame.get("id"))
    current_run.set(run)
    started = time.perf_counter()

    def finish(answer):
        _stdout.finish(run)
        _stderr.finish(run)
        answer["duration"] = round((time.perf_counter() - started) * 1000)
        send(answer)

    name = frame.get("fn")
    entry = functions.get(name) if isinstance(name, str) else None
    if entry is None:
        finish({"type": "result", "id": run.id, "ok": False,
                "error": {"name": "NotFound", "message": 'Function "%s" not found' % name}})
        return
    spec, function = entry
    if isinstance(function, dict):
        finish({"type": "result", "id": run.id, "ok": False, "error": {
            "name": "SyntaxError", "message": "%s (line %d, column %d)" % (
                function["message"], function["line"], function["column"])}})
        return
    parameters = frame.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    # Parameters the function does not declare are ignored, as JavaScript's destructuring does.
    arguments = {key: value for key, value in parameters.items() if key in spec.names}
    try:
        value = await function(**arguments)
    except BaseException as err:  # noqa: BLE001 - whatever the function raised is its result
        finish({"type": "result", "id": run.id, "ok": False, "error": describe_error(err)})
        return
    try:
        text = serialize_result(value)
    except (TypeError, ValueError, RecursionError) as err:
        finish({"type": "result", "id": run.id, "ok": False, "error": {
            "name": "TypeError", "message": "The result is not JSON-serialisable: %s" % err}})
        return
    size = len(text.encode("utf-8", "replace"))
    if size > ARGS["result_max"]:
        finish({"type": "result", "id": run.id, "ok": False, "error": {
            "name": "ResultTooLarge",
            "message": "The result is %d bytes, more than FUNCTIONS_RESULT_MAX_SIZE (%d bytes)"
                       % (size, ARGS["result_max"])}})
        return
    _stdout.finish(run)
    _stderr.finish(run)
    duration = round((time.perf_counter() - started) * 1000)
    # The result is spliced in as text: it was serialised once, here.
    _send_bytes(('{"type":"result","id":%s,"ok":true,"duration":%d,"result":%s}\n'
                 % (json.dumps(run.id), duration, text)).encode("utf-8", "replace"))


_runs = {}  # id -> task of the run


def handle_run(frame):
    # A context of its own per run: current_run set in one never leaks into another.
    run_id = frame.get("id")
    task = _loop.create_task(run_function(frame), context=contextvars.Context())
    _runs[run_id] = task
    task.add_done_callback(lambda _: _runs.pop(run_id, None))


# ---- Syntax checks ----


def handle_check(frame):
    errors = []
    for item in frame.get("functions") or []:
        spec = FunctionSpec(str(item.get("name", "")), [(str(p), None) for p in item.get("parameters") or []],
                            str(item.get("code", "")))
        error = check_function(spec)
        if error:
            errors.append(error)
    send({"type": "checked", "id": frame.get("id"), "errors": errors})


# ---- Frames in ----


def handle_frame(line):
    try:
        frame = json.loads(line)
        kind = frame.get("type")
    except (ValueError, AttributeError):
        _real_stderr.write("customcode worker: ignoring a malformed frame\n")
        return
    if kind == "run":
        handle_run(frame)
    elif kind == "ping":
        send({"type": "pong", "id": frame.get("id")})
    elif kind == "called":
        handle_called(frame)
    elif kind == "cancel":
        handle_cancel(frame)
    elif kind == "check":
        handle_check(frame)
    elif kind == "load" and ARGS["spare"] and not functions:
        handle_load(frame)
    else:
        send({"type": "error", "id": frame.get("id"), "message": "unknown frame type %s" % kind})


# ---- Spares ----

# A spare worker starts without a workspace; the service hands it one by sending the generated
# module's text (see src/pool/spare_pool.hpp), so the first run of a new workspace costs a compile,
# not an interpreter start. The heavy packages (numpy, pandas) are not imported ahead: they would
# cost every spare 20-50 MB; load_workspace imports what the workspace's code imports.


def handle_load(frame):
    try:
        load_workspace(str(frame.get("filename", "functions.py")), str(frame.get("source", "")))
    except Exception:  # noqa: BLE001 - reported to the service, which starts a fresh worker
        functions.clear()
        send({"type": "loaded", "id": frame.get("id"), "ok": False,
              "error": {"name": "LoadError", "message": traceback.format_exc()}})
        return
    send({"type": "loaded", "id": frame.get("id"), "ok": True})


async def warm_up():
    """Runs the paths a workspace's first run takes (parse, compile, call, serialise) once, so that
    run does not pay for them."""
    spec = FunctionSpec("customcode_warm_up", [("a", "null")], "return {'x': a, 'n': [1, 2.5, True, None]}")
    namespace = {"__builtins__": user_builtins(), "cache": {}, "__customcode_missing__": _MISSING,
                 "__customcode_default__": lambda function, parameter: None}
    compile_function(spec, namespace)
    serialize_result(await namespace[spec.name](a="warm"))
    linecache.cache.pop(spec.name, None)
    json.loads('{"type":"run","id":1,"fn":"f","parameters":{"a":1}}')


def exit_now(code):
    flush()
    try:
        _real_stdout.flush()
        _real_stderr.flush()
    finally:
        os._exit(code)


def listen(loop):
    pending = bytearray()
    os.set_blocking(IN_FD, False)

    def on_readable():
        try:
            chunk = os.read(IN_FD, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            exit_now(0)
        if not chunk:
            exit_now(0)  # the service closes our input to retire us
        pending.extend(chunk)
        while True:
            newline = pending.find(b"\n")
            if newline < 0:
                break
            line = bytes(pending[:newline])
            del pending[:newline + 1]
            if line.strip():
                handle_frame(line)

    loop.add_reader(IN_FD, on_readable)


def on_loop_exception(loop, context):
    # An exception in a task nobody awaits belongs to no run any more: log it, keep serving.
    err = context.get("exception")
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__)) if err else ""
    _real_stderr.write("unhandled: %s %s\n" % (context.get("message", ""), text))
    _real_stderr.flush()


async def main():
    global _loop, _loop_thread
    _loop = asyncio.get_running_loop()
    _loop_thread = threading.get_ident()
    _loop.set_exception_handler(on_loop_exception)
    if ARGS["spare"]:
        try:
            await warm_up()
        except Exception:  # noqa: BLE001 - only a warm-up: the spare still serves
            traceback.print_exc(file=_real_stderr)
    elif not ARGS["check_only"]:
        try:
            load_workspace(ARGS["module"])
        except Exception:  # noqa: BLE001 - reported to the service, which logs it
            send_now({"type": "fatal", "message": "cannot load the workspace module: " + traceback.format_exc()})
            exit_now(1)
    listen(_loop)
    send_now({"type": "ready", "pid": os.getpid()})
    await asyncio.Event().wait()


if __name__ == "__main__":
    install_capture()
    asyncio.run(main())
