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
saying so.
"""

import importlib
import importlib.util
import io
import json
import logging
import math
import os
import resource
import sys
import threading
import traceback
import types

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

_lock = threading.Lock()
_channel = None


def _send_text(text):
    """Writes one JSON line to the runner; a closed channel (the run is being stopped) is ignored."""
    global _channel
    with _lock:
        if _channel is None:
            return
        try:
            _channel.write(text + "\n")
            _channel.flush()
        except (BrokenPipeError, OSError, ValueError):
            _channel = None


def _send(message):
    _send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str))


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


def _log(level, text):
    _send({"t": "log", "l": level, "m": text})


class _ChannelHandler(logging.Handler):
    """Sends each record (with its traceback, if any) to the runner as a log line."""

    def emit(self, record):
        try:
            _log(_level_name(record.levelno), self.format(record))
        except Exception:  # noqa: BLE001 - a log line must never break the script
            self.handleError(record)


class GefLogger(logging.Logger):
    """The logger a script gets: the standard methods, ``warn`` and ``send_progress``."""

    def warn(self, msg, *args, **kwargs):  # noqa: D401 - kept for older scripts
        kwargs.setdefault("stacklevel", 2)
        self.warning(msg, *args, **kwargs)

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
        self._buffer = ""
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
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                self._emit(line)
        return len(text)

    def _emit(self, line):
        line = line.rstrip("\r").rstrip()
        if line:
            _log(self._level, line)

    def finish(self):
        with self._lock:
            rest, self._buffer = self._buffer, ""
        self._emit(rest)


def _make_logger():
    logger = GefLogger("gef.script")
    logger.setLevel(logging.DEBUG)
    handler = _ChannelHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger


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


def _take_job():
    """Says it is ready, then reads the one job (stdin until end of file); stdin is /dev/null after."""
    _send({"t": "ready"})
    job = json.loads(sys.stdin.buffer.read() or b"{}")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, "r", closefd=False)  # noqa: SIM115 - lives as long as the process
    return job if isinstance(job, dict) else {}


def _run():
    global _channel
    _channel = os.fdopen(CHANNEL_FD, "w", encoding="utf-8", errors="replace", closefd=True)
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


def main():
    code = 1
    try:
        code = _run()
    finally:
        with _lock:
            if _channel is not None:
                try:
                    _channel.flush()
                except (OSError, ValueError):
                    pass
        # Threads the script left behind do not keep the run alive.
        os._exit(code)


if __name__ == "__main__":
    main()
