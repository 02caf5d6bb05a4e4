"""The GEF runtime shim: runs a Trends.Earth script in the sandbox the runner prepared.

The runner starts ``python -I -S gef_runtime.py`` in the sandbox (as the run's user, with
its limits, in its working directory, with a scrubbed environment), possibly before it
knows which run it is for: the shim imports what it needs, says ``{"t": "ready"}`` and
waits for its one job, a JSON object on stdin (then end of file):

    {"params": {...},                  the run's params
     "env": {...},                     the script's whole environment (replaces the process's)
     "limits": {"as": n, "cpu": n, ...},  resource limits, only ever lowered (setrlimit)
     "environment": "/path/of/venv",   the run's virtual environment (its site-packages)
     "workdir": "/path"}               where the archive is extracted (the current directory)

It applies the limits, the environment and the virtual environment (as the venv's own
interpreter would at start: ``site.main()`` with ``sys.executable`` in the venv), then runs
the script. One job per process: the process ends with the run. The runner reads JSON lines
from file descriptor 3:

    {"t": "ready"}                               waiting for the job
    {"t": "log", "l": "INFO", "m": "text"}     a log line (DEBUG, INFO, WARNING, ERROR, CRITICAL)
    {"t": "progress", "v": 42.5}                 progress, 0-100
    {"t": "result", "v": <any JSON>}             the return value of run() (last message)
    {"t": "failed", "m": "why"}                  the run failed (last message)

``src/main.py`` is imported as the package ``gef_script`` (so relative imports work, and
``src`` is on ``sys.path`` for sibling imports) and ``run(params, logger)`` is called with
the run's params plus ``ENV`` and ``EXECUTION_ID``. ``logger`` is a ``logging.Logger``
with ``warn`` and ``send_progress(percent)``. Printed output becomes log lines (stdout
INFO, stderr WARNING), in order with the logger's lines. An exception ends the run with an
ERROR line holding the traceback; a return value that is not JSON ends it with a line
saying so. A script written for ``gefcore`` (the package Trends.Earth's script environments
ran scripts with) finds ``gefcore.api`` and ``gefcore.loggers`` over the same channel, unless
its environment has a ``gefcore`` of its own.

Messages are buffered in the process and written together within ``FLUSH_SECONDS`` (or once
``FLUSH_CHARS`` wait): a write and a flush per line cost more than the script's logging.
Nothing written is lost on the ways a run ends: its end (result, exception), ``os._exit``,
SIGTERM and SIGXCPU (the runner's stop and timeout, the CPU time limit: the lines go out,
then the process ends by the signal) and a fork (a child starts with an empty buffer and writes whole lines). A plain
logger call skips ``logging``'s record and caller lookup (``GefLogger``).
"""

import collections.abc
import importlib
import importlib.util
import io
import json
import logging
import math
import os
import resource
import sys
import signal
import threading
import time
import traceback
import types
from json.encoder import encode_basestring as _json_string

CHANNEL_FD = 3
PACKAGE = "gef_script"

# The job's limit names and their resources (soft = hard = the value, as prlimit sets them).
LIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "nofile": resource.RLIMIT_NOFILE,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
}

# Lines wait in the shim at most this long (or until this many characters wait) before
# they are written to the runner in one go: a write per line cost more than the logging.
FLUSH_SECONDS = 0.01
FLUSH_CHARS = 64 * 1024
# Writes up to this size reach a pipe whole: once the process has forked, a child may write
# to the channel too, so writes then end at line boundaries within it.
PIPE_BUF = 4096


class _Channel:
    """The runner's channel (fd 3): JSON lines, buffered, written within FLUSH_SECONDS.

    Every line is written before the process ends: at the end of the run, in ``os._exit``,
    on SIGTERM (the runner's stop and timeout) and SIGXCPU, and before a fork. A closed channel (the run
    is being stopped) drops what is written to it.
    """

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.parts = []
        self.size = 0
        self.closed = False
        self.shared = False
        self.owner = None
        self.pending_signal = None
        self.thread = None
        self.buffered = True

    def send(self, text):
        """Queues one line (without its newline); written within FLUSH_SECONDS."""
        self._enter()
        try:
            if self.closed:
                return
            self.parts.append(text)
            self.size += len(text) + 1
            if not self.buffered or self.size >= FLUSH_CHARS:
                self._write_locked()
            elif len(self.parts) == 1:
                if self.thread is None:
                    self._start_flusher()
                self.wake.notify()
        finally:
            self._leave()

    def flush(self, timeout=-1):
        """Writes what waits; gives up after `timeout` seconds when another holds the channel."""
        if not self.lock.acquire(timeout=timeout):
            return False
        self.owner = threading.get_ident()
        try:
            self._write_locked()
        finally:
            self._leave()
        return True

    def _enter(self):
        self.lock.acquire()
        self.owner = threading.get_ident()

    def _leave(self):
        self.owner = None
        signum = self.pending_signal
        if signum is not None:
            # A stop arrived while this thread held the channel: everything goes out first.
            self._write_locked()
        self.lock.release()
        if signum is not None:
            _end_by_signal(signum)

    def _start_flusher(self):
        try:
            self.thread = threading.Thread(target=self._flusher, name="gef-log-flush", daemon=True)
            self.thread.start()
        except RuntimeError:  # no thread to be had (the process limit): write every line at once
            self.thread = None
            self.buffered = False

    def _flusher(self):
        with self.wake:
            while True:
                if not self.parts:
                    self.wake.wait()
                    continue
                self.wake.wait(FLUSH_SECONDS)
                self.owner = threading.get_ident()
                try:
                    self._write_locked()
                finally:
                    self.owner = None
                if self.pending_signal is not None:
                    self._write_locked()
                    self.lock.release()
                    _end_by_signal(self.pending_signal)

    def _write_locked(self):
        if not self.parts:
            return
        parts, self.parts, self.size = self.parts, [], 0
        if self.closed:
            return
        try:
            if not self.shared:
                self._write_all(("\n".join(parts) + "\n").encode("utf-8", "replace"))
                return
            chunk, size = [], 0
            for part in parts:
                data = (part + "\n").encode("utf-8", "replace")
                if size + len(data) > PIPE_BUF and chunk:
                    self._write_all(b"".join(chunk))
                    chunk, size = [], 0
                chunk.append(data)
                size += len(data)
            if chunk:
                self._write_all(b"".join(chunk))
        except OSError:
            self.closed = True

    def _write_all(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def before_fork(self):
        self.flush()
        self.shared = True

    def after_fork_in_child(self):
        # The parent's lines are its own to write; the child starts with none and its own lock.
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.parts = []
        self.size = 0
        self.owner = None
        self.thread = None

    def on_terminate(self, signum, frame):  # noqa: ARG002 - a signal handler's signature
        """SIGTERM, SIGXCPU: the lines written so far go out, then the process ends by the signal."""
        if self.owner == threading.get_ident() or not self.lock.acquire(timeout=1.0):
            # Interrupted while holding the channel: whoever holds it ends the process when done.
            self.pending_signal = signum
            return
        try:
            self._write_locked()
        finally:
            self.lock.release()
        _end_by_signal(signum)


def _end_by_signal(signum):
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(5)
    _real_exit(128 + signum)


_channel = None
_real_exit = os._exit


def _exit(code):
    """os._exit for the script: its lines are written first."""
    if _channel is not None:
        _channel.flush(timeout=1.0)
    _real_exit(code)


def _send_text(text):
    """Queues one JSON line for the runner; a closed channel (the run is being stopped) drops it."""
    if _channel is not None:
        _channel.send(text)


def _send(message):
    _send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str))


_LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level_name(levelno):
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


# The log message's JSON line up to its text, per level.
_LOG_PREFIX = {name: '{"t":"log","l":"' + name + '","m":' for name in _LEVEL_NAMES}


# The runner keeps log lines of at most 32 KiB characters, cut after it has masked the run's
# tokens in them. A longer line is cut here already, so that a message the runner takes as
# too long can only be a result, but 4 KiB later: a token across the runner's cut is whole
# when the runner masks it, and what lies past it is cut away there.
_MAX_LINE = 32 * 1024 + 4096
_CUT_MARK = f"\u2026 [cut at {_MAX_LINE} characters]"


def _log(level, text):
    if len(text) > _MAX_LINE:
        text = text[:_MAX_LINE] + _CUT_MARK
    _send_text(_LOG_PREFIX[level] + _json_string(text) + "}")


class _ChannelHandler(logging.Handler):
    """Sends each record (with its traceback, if any) to the runner as a log line."""

    def emit(self, record):
        try:
            _log(_level_name(record.levelno), self.format(record))
        except Exception:  # noqa: BLE001 - a log line must never break the script
            self.handleError(record)


def _past_this_frame(kwargs):
    """A record's caller is the script's frame, not the GefLogger method it called."""
    kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
    return kwargs


class GefLogger(logging.Logger):
    """The logger a script gets: a ``logging.Logger`` with ``warn`` and ``send_progress``.

    A plain call (``logger.info("x %s", y)``: no keyword arguments, the logger as the shim
    made it: its one handler, no filters, not propagating) goes straight to the channel, as
    the handler would send it but without a LogRecord and its caller lookup; anything else
    (``exc_info``, ``extra``, handlers or filters the script added, propagation to the root
    logger) takes the standard way.
    """

    _handler = None

    def setLevel(self, level):  # noqa: N802 - logging's name
        super().setLevel(level)
        self._cache.clear()

    def getChild(self, suffix):  # noqa: N802 - logging's name
        """A child (``logger.getChild("step")``) is a GefLogger too: it has ``send_progress``,
        and its lines reach the run's log through this logger's handler."""
        return _with_logger_class(lambda: super(GefLogger, self).getChild(suffix))

    def _plain(self, level):
        handler = self._handler
        handlers = self.handlers
        return (
            len(handlers) == 1
            and handlers[0] is handler
            and not self.filters
            and not self.propagate
            and not handler.filters
            and handler.level <= level
            and handler.formatter is _FORMATTER
            and self.isEnabledFor(level)
        )

    def _fast(self, level, msg, args):
        """Sends a plain call's line; False when it must take the standard way."""
        if not self._plain(level):
            return not self.isEnabledFor(level)
        try:
            if args:
                if len(args) == 1 and isinstance(args[0], collections.abc.Mapping) and args[0]:
                    args = args[0]
                text = str(msg) % args
            else:
                text = str(msg)
        except Exception:  # noqa: BLE001 - the standard way reports it (logging's handleError)
            return False
        _log(_level_name(level), text)
        return True

    def debug(self, msg, *args, **kwargs):
        if kwargs or not self._fast(logging.DEBUG, msg, args):
            super().debug(msg, *args, **_past_this_frame(kwargs))

    def info(self, msg, *args, **kwargs):
        if kwargs or not self._fast(logging.INFO, msg, args):
            super().info(msg, *args, **_past_this_frame(kwargs))

    def warning(self, msg, *args, **kwargs):
        if kwargs or not self._fast(logging.WARNING, msg, args):
            super().warning(msg, *args, **_past_this_frame(kwargs))

    def warn(self, msg, *args, **kwargs):  # noqa: D401 - kept for older scripts
        if kwargs or not self._fast(logging.WARNING, msg, args):
            super().warning(msg, *args, **_past_this_frame(kwargs))

    def error(self, msg, *args, **kwargs):
        if kwargs or not self._fast(logging.ERROR, msg, args):
            super().error(msg, *args, **_past_this_frame(kwargs))

    def critical(self, msg, *args, **kwargs):
        if kwargs or not self._fast(logging.CRITICAL, msg, args):
            super().critical(msg, *args, **_past_this_frame(kwargs))

    fatal = critical

    def log(self, level, msg, *args, **kwargs):
        if kwargs or not isinstance(level, int) or not self._fast(level, msg, args):
            super().log(level, msg, *args, **_past_this_frame(kwargs))

    def send_progress(self, progress):
        """Reports the run's progress in percent (a float from 0 to 100)."""
        try:
            value = float(progress)
        except (TypeError, ValueError):
            self.warning("send_progress: %r is not a number", progress)
            return
        if math.isnan(value):
            return
        _send({"t": "progress", "v": min(100.0, max(0.0, value))})


class _LineWriter(io.TextIOBase):
    """sys.stdout / sys.stderr: each complete line becomes a log line of the given level."""

    def __init__(self, level, original):
        super().__init__()
        self._level = level
        self._original = original
        # The line being written, in the pieces it came in (joined once it ends), and their
        # length: at most _MAX_LINE characters are kept of it, the rest dropped until it ends.
        self._parts = []
        self._length = 0
        self._lock = threading.Lock()

    def writable(self):
        return True

    @property
    def encoding(self):
        return "utf-8"

    def isatty(self):
        return False

    def fileno(self):
        # Subprocesses given sys.stdout write to the real descriptor, which the runner reads too.
        return self._original.fileno()

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            # Only what came is searched for line ends: output without one (a counter
            # rewritten with '\r', say) costs its own length, not the whole line's again.
            pieces = text.split("\n")
            for piece in pieces[:-1]:
                self._keep(piece)
                line = "".join(self._parts)
                self._parts, self._length = [], 0
                self._emit(line)
            self._keep(pieces[-1])
        return len(text)

    def _keep(self, piece):
        room = _MAX_LINE + 1 - self._length
        if room > 0 and piece:
            piece = piece[:room]
            self._parts.append(piece)
            self._length += len(piece)

    def _emit(self, line):
        line = line.rstrip("\r").rstrip()
        if line:
            _log(self._level, line)

    def finish(self):
        with self._lock:
            rest = "".join(self._parts)
            self._parts, self._length = [], 0
        self._emit(rest)


_FORMATTER = logging.Formatter("%(message)s")


def _with_logger_class(make):
    """Calls ``make`` while logging's registry makes GefLoggers (and only meanwhile: the
    loggers a script's libraries make stay what they are)."""
    manager = logging.Logger.manager
    previous = manager.loggerClass
    manager.loggerClass = GefLogger
    try:
        return make()
    finally:
        manager.loggerClass = previous


def _make_logger():
    # In logging's registry, so that children find it as their parent.
    logger = _with_logger_class(lambda: logging.getLogger("gef.script"))
    logger.setLevel(logging.DEBUG)
    handler = _ChannelHandler()
    handler.setFormatter(_FORMATTER)
    logger.addHandler(handler)
    logger._handler = handler
    logger.propagate = False
    return logger


# ``gefcore``, the package Trends.Earth's script environments ran scripts with, for scripts that
# import it: ``gefcore.api`` (``patch_execution``, ``save_log``, ``get_params``, ``login``)
# and ``gefcore.loggers`` (``get_logger``, ``GEFLogger``, ``ServerLogHandler``), over this
# run's channel instead of HTTP calls as a shared account. A ``gefcore`` the script's
# environment installs itself comes first (this one is found only after every other finder).
_GEFCORE_MODULES = ("gefcore", "gefcore.api", "gefcore.loggers")


def _gefcore_level(level):
    name = str(level).upper() if level is not None else "INFO"
    if name == "WARN":
        return "WARNING"
    if name == "FATAL":
        return "CRITICAL"
    return name if name in _LEVEL_NAMES else "INFO"


class _GefcoreFinder:
    """Finds the three ``gefcore`` modules, filled with this run's params and logger."""

    def __init__(self, params, logger):
        self._params = params
        self._logger = logger

    def find_spec(self, fullname, path=None, target=None):  # noqa: ARG002 - the finder protocol
        if fullname not in _GEFCORE_MODULES:
            return None
        # The submodules belong to this gefcore only, never to one of the script's own.
        if fullname != "gefcore" and getattr(getattr(sys.modules.get("gefcore"), "__spec__", None), "loader", None) is not self:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname == "gefcore")

    def create_module(self, spec):  # noqa: ARG002 - the loader protocol
        return None

    def exec_module(self, module):
        if module.__name__ == "gefcore.api":
            self._fill_api(module)
        elif module.__name__ == "gefcore.loggers":
            self._fill_loggers(module)

    def _fill_api(self, module):
        logger = self._logger
        params = self._params

        def patch_execution(json=None):
            """Progress goes to the run; its status and results are what ``run()`` returns."""
            if not isinstance(json, dict):
                raise TypeError("patch_execution(json): json must be a dict")
            if "progress" in json:
                logger.send_progress(json["progress"])
            ignored = sorted(str(key) for key in json if key != "progress")
            if ignored:
                logger.warning(
                    "gefcore.api.patch_execution: %s not sent (a run's status and results are what run() returns or raises)",
                    ", ".join(ignored),
                )

        def save_log(json=None):
            """One line of the run's log: ``{"text": ..., "level": ...}``."""
            if not isinstance(json, dict):
                raise TypeError("save_log(json): json must be a dict")
            _log(_gefcore_level(json.get("level")), str(json.get("text", "")))

        def get_params():
            """The run's params, as ``run()`` gets them."""
            return json.loads(json.dumps(params))

        def login():
            """The run's own token for the API (``API_TOKEN``)."""
            return os.environ.get("API_TOKEN")

        module.API_URL = os.environ.get("API_URL")
        module.EXECUTION_ID = os.environ.get("EXECUTION_ID")
        module.patch_execution = patch_execution
        module.save_log = save_log
        module.get_params = get_params
        module.login = login

    def _fill_loggers(self, module):
        logger = self._logger

        def get_logger(name=None):
            """The run's logger (``gefcore``'s own name too), or its child of that name."""
            return logger if name in (None, "", "gefcore", logger.name) else logger.getChild(str(name))

        module.GEFLogger = GefLogger
        module.ServerLogHandler = _ChannelHandler
        module.get_logger = get_logger
        module.get_logger_by_env = get_logger


def _install_gefcore(params, logger):
    sys.meta_path.append(_GefcoreFinder(params, logger))


def _load_script(src):
    """Imports src/main.py as ``gef_script.main`` (src/__init__.py runs first when present)."""
    if src not in sys.path:
        sys.path.insert(0, src)
    init = os.path.join(src, "__init__.py")
    if os.path.isfile(init):
        spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[src])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    else:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [src]
        sys.modules[PACKAGE] = package
    return importlib.import_module(PACKAGE + ".main")


def _traceback_text(exc):
    """The traceback without this shim's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _describe(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _apply_limits(limits):
    """Lowers the process's limits to the job's; a limit that cannot be applied fails the run."""
    for name, value in (limits or {}).items():
        if name not in LIMITS or value is None:
            continue
        value = int(value)
        # CPU: SIGXCPU (the run says "CPU time limit") a second before the kernel's SIGKILL.
        soft = value - 1 if name == "cpu" and value > 1 else value
        resource.setrlimit(LIMITS[name], (soft, value))
        if resource.getrlimit(LIMITS[name]) != (soft, value):
            raise OSError(f"the {name} limit did not take effect")


def _apply_environment(env):
    """The script's environment replaces the process's (what subprocesses inherit too)."""
    if not isinstance(env, dict):
        return
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})


def _enter_environment(venv):
    """The site set-up the venv's own interpreter does at start (this one started with -S)."""
    import site

    if venv:
        sys.executable = os.path.join(venv, "bin", "python")
    site.main()


def _open_channel():
    """The channel to the runner, written before the process forks, exits or is stopped."""
    global _channel
    _channel = _Channel(CHANNEL_FD)
    os.register_at_fork(before=_channel.before_fork, after_in_child=_channel.after_fork_in_child)
    # The runner's stop and timeout (SIGTERM), the CPU time limit (SIGXCPU, a second before SIGKILL).
    for signum in (signal.SIGTERM, signal.SIGXCPU):
        signal.signal(signum, _channel.on_terminate)
    os._exit = _exit


def _take_job():
    """Says it is ready, then reads the one job (stdin until end of file); stdin is /dev/null after."""
    _send({"t": "ready"})
    _channel.flush()
    job = json.loads(sys.stdin.buffer.read() or b"{}")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, "r", closefd=False)  # noqa: SIM115 - lives as long as the process
    return job if isinstance(job, dict) else {}


def _run():
    _open_channel()
    request = _take_job()
    try:
        _apply_limits(request.get("limits"))
        _apply_environment(request.get("env"))
        workdir = request.get("workdir")
        if workdir:
            os.chdir(workdir)
        _enter_environment(request.get("environment"))
    except BaseException as exc:  # noqa: BLE001 - without its sandbox, no script runs
        _log("ERROR", "The run could not be prepared: " + _describe(exc))
        _send({"t": "failed", "m": "the run could not be prepared: " + _describe(exc)})
        return 1
    params = request.get("params")
    if not isinstance(params, dict):
        params = {}
    params["ENV"] = os.environ.get("ENV")
    params["EXECUTION_ID"] = os.environ.get("EXECUTION_ID")

    out, err = _LineWriter("INFO", sys.__stdout__), _LineWriter("WARNING", sys.__stderr__)
    sys.stdout, sys.stderr = out, err
    logger = _make_logger()
    _install_gefcore(params, logger)

    def finish():
        out.finish()
        err.finish()
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass

    try:
        module = _load_script(os.path.join(os.getcwd(), "src"))
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError("src/main.py defines no run(params, logger) function")
    except BaseException as exc:  # noqa: BLE001 - whatever the script does, the run fails cleanly
        finish()
        _log("ERROR", "The script could not be loaded:\n" + _traceback_text(exc))
        _send({"t": "failed", "m": "the script could not be loaded: " + _describe(exc)})
        return 1

    try:
        result = run(params, logger)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt end the run too
        finish()
        _log("ERROR", _traceback_text(exc))
        _send({"t": "failed", "m": _describe(exc)})
        return 1

    finish()
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        _log("ERROR", f"The script returned a value that is not JSON ({type(result).__name__}): {exc}")
        _send({"t": "failed", "m": "the result is not JSON"})
        return 1
    _send_text('{"t":"result","v":' + text + "}")
    return 0


# The fork server: one interpreter, started once with the shim imported, forks each run's.
#
# Starting an interpreter and importing the shim costs about 50 ms of CPU; a fork of one
# that has done so costs a few. The runner starts ``gef_runtime.py --fork-server <socket>
# <runner pid>`` (as root when runs get users of their own) and asks for an interpreter with
# a JSON line on stdin:
#
#     {"id": 1, "token": "…", "dir": "/run/dir", "uid": 910001 or null,
#      "procs": "…/cgroup.procs" or null, "limits": {"as": n, …} or null, "nice": 0,
#      "env": {…}}
#
# and is told on stdout ``{"t": "forked", "id": 1, "pid": n}`` (or ``{"t": "refused", "id": 1,
# "m": why}``) and, when it ends, ``{"t": "exit", "pid": n, "code": c, "signal": s}``. The
# child makes itself what the runner's wrapped command line would (``Sandbox.wrap``): its
# own session, its run's memory cgroup, the three connections to the runner on the socket
# as fds 0 and 3 (stdin and the channel), 1 and 2, nothing else open, umask 077, the limits
# (soft = hard), the uid and gid with no groups, no new privileges, the parent-death signal,
# and the environment; then it is the shim (main), waiting for its job. It never execs:
# what it runs is the code the server imported.

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18


def _prctl(libc, option, value):
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = __import__("ctypes").get_errno()
        raise OSError(errno, f"prctl({option}) failed: {os.strerror(errno)}")


def _private_proc(libc):
    """A mount namespace of the run's own (mount events kept private) with a /proc that
    shows only its user's processes, as sandbox/private-proc.ts mounts it for a spawned run."""
    steps = (
        lambda: libc.unshare(CLONE_NEWNS),
        lambda: libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
        lambda: libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=invisible"),
    )
    for step in steps:
        if step() != 0:
            errno = __import__("ctypes").get_errno()
            raise OSError(errno, f"a /proc of the run's own: {os.strerror(errno)}")


def _connect(path, token, stream):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(f"{token} {stream}\n".encode("ascii"))
    return sock.detach()


def _become_run(libc, request, socket_path, server_pid):
    """In a child of the fork server: becomes the run's interpreter (see above); never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        procs = request.get("procs")
        if procs:
            # The run's groups' cgroup.procs, joined by ':' (memory, and v1's cpuacct).
            for path in procs.split(":"):
                with open(path, "w") as group:
                    group.write(str(os.getpid()))
        token = str(request["token"])
        fds = [_connect(socket_path, token, stream) for stream in (0, 1, 2)]
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        os.dup2(fds[2], 2)
        os.dup2(fds[0], CHANNEL_FD)
        os.closerange(CHANNEL_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.umask(0o077)
        os.chdir(str(request["dir"]))
        nice = int(request.get("nice") or 0)
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        for name, value in (request.get("limits") or {}).items():
            if name in LIMITS:
                limit = resource.RLIM_INFINITY if value is None else int(value)
                resource.setrlimit(LIMITS[name], (limit, limit))
        if request.get("privateProc"):
            _private_proc(libc)
        uid = request.get("uid")
        if uid is not None:
            os.setgroups([])
            os.setresgid(int(uid), int(uid), int(uid))
            os.setresuid(int(uid), int(uid), int(uid))
        _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
        # A change of uid clears the parent-death signal and makes the process undumpable
        # (its /proc entries root's); an exec would have undone both, as for any process.
        _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(libc, PR_SET_DUMPABLE, 1)
        if os.getppid() != server_pid:
            _real_exit(1)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        sys.argv = sys.argv[:1]
    except BaseException:  # noqa: BLE001 - a child that cannot become its run ends at once
        _real_exit(70)
    main()


# Signals a stop sends to a whole process group (SIGINT first: its default is Python's own).
_GROUP_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _fork_server(socket_path, runner_pid):
    """Forks an interpreter per request until stdin ends (or the runner dies)."""
    import ctypes
    import select
    import site  # noqa: F401 - imported once here; each run's site.main() finds it loaded
    import socket  # noqa: F401 - the same for the children's connections (_connect)

    libc = ctypes.CDLL(None, use_errno=True)
    _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != runner_pid:
        _real_exit(1)
    server_pid = os.getpid()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # noqa: ARG005
    # The runner ends this server (its stdin closes) once the runs it forked are over: a
    # signal to the runner's whole process group (its stop) must not end them sooner.
    for signum in _GROUP_STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)

    def reply(message):
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.WIFSIGNALED(status):
                reply({"t": "exit", "pid": pid, "code": None, "signal": os.WTERMSIG(status)})
            elif os.WIFEXITED(status):
                reply({"t": "exit", "pid": pid, "code": os.WEXITSTATUS(status), "signal": None})

    def fork(request):
        try:
            pid = os.fork()
        except OSError as exc:
            reply({"t": "refused", "id": request.get("id"), "m": _describe(exc)})
            return
        if pid == 0:
            # No signal may write to the wake-up pipe (or a descriptor reusing its number).
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for signum in _GROUP_STOP_SIGNALS[1:]:
                signal.signal(signum, signal.SIG_DFL)
            os.close(wake_read)
            os.close(wake_write)
            _become_run(libc, request, socket_path, server_pid)
        reply({"t": "forked", "id": request.get("id"), "pid": pid})

    pending = b""
    while True:
        try:
            readable = select.select([0, wake_read], [], [])[0]
        except InterruptedError:
            readable = []
        if wake_read in readable:
            try:
                while os.read(wake_read, 512):
                    pass
            except BlockingIOError:
                pass
        reap()
        if 0 not in readable:
            continue
        data = os.read(0, 65536)
        if not data:
            _real_exit(0)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if isinstance(request, dict):
                fork(request)


def main():
    code = 1
    try:
        code = _run()
    finally:
        if _channel is not None:
            _channel.flush(timeout=5.0)
        # Threads the script left behind do not keep the run alive.
        _real_exit(code)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--fork-server":
        _fork_server(sys.argv[2], int(sys.argv[3]))
    else:
        main()
