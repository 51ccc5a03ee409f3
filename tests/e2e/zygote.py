"""Starts `python -m bot` for the tests without paying for its imports each time.

Importing the bot takes seconds of CPU (aiogram builds ~350 pydantic models), and the e2e
tests start it about a hundred times. This process imports it once, then forks a child per
start, which runs what `python -m bot` runs, `bot.__main__.main`, in the environment, the
folder and with the output file asked for. The bot reads nothing at import time, so a child
is the same bot.

Protocol, one JSON object per line: the test writes {"argv", "env", "cwd", "log"} to stdin;
this answers {"started": pid}, and {"exited": pid, "code": n} when that child ends (a
negative n: killed by that signal, as asyncio's returncode says).
"""

import importlib
import json
import os
import signal
import sys
import traceback
from types import FrameType

# Everything `python -m bot` (and `python -m bot demo`) imports, once.
PRELOAD = ("bot.__main__", "bot.app", "bot.serve", "bot.demo", "playground.web")


def _say(message: dict[str, int]) -> None:
    """One whole line, in one write: a signal handler may say something too."""
    os.write(1, (json.dumps(message) + "\n").encode())


def _reap(_signum: int, _frame: FrameType | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _run(request: dict[str, object]) -> None:
    """In the child: become `python -m bot` with the request's argv, environment and folder."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    os.chdir(str(request["cwd"]))
    code = 1
    try:
        from bot.__main__ import main

        code = main(list(request["argv"]))  # type: ignore[call-overload]
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, _reap)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run(request)
        _say({"started": pid})


if __name__ == "__main__":
    serve()
