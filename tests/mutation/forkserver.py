"""Run pytest in forks of one warm process (started by `run.py` with the project's Python).

Importing FastAPI, pydantic, joserfc and the rest takes longer than most test selections
run, so this process imports the project's third-party modules once and forks a child per
request; the child imports the project's own modules (`app`, `devserver`, `tests`) afresh
from the worker directory it is told, so it sees that directory's mutated file.

Protocol: one JSON object per line on stdin, {"cwd", "args", "env", "timeout"}; one line
back on stdout: the pytest exit code, or "timeout". An empty value in "env" unsets the name.
Exit code 99: pytest itself raised; the traceback is in ERROR_FILE in the worker directory.
"""

import importlib
import json
import os
import signal
import sys
import time
import traceback

OWN = ("app", "devserver", "tests")
ERROR_FILE = ".forkserver-error"  # in the worker directory: why pytest could not run


def preload(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a module that needs the app's context: the child imports it
            continue


def run(request: dict[str, object]) -> str:
    pid = os.fork()
    if pid == 0:
        try:
            if not os.environ.get("MUTATION_VERBOSE"):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            cwd = str(request["cwd"])
            os.chdir(cwd)
            sys.path.insert(0, cwd)
            for name, value in dict(request["env"]).items():  # type: ignore[call-overload]
                if value:
                    os.environ[name] = value
                else:
                    os.environ.pop(name, None)
            import pytest

            code = pytest.main(list(request["args"]))  # type: ignore[call-overload]
            os._exit(int(code))
        except BaseException:
            with open(os.path.join(str(request["cwd"]), ERROR_FILE), "w") as log:
                traceback.print_exc(file=log)
            os._exit(99)
    deadline = time.monotonic() + float(request["timeout"])  # type: ignore[arg-type]
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return str(os.waitstatus_to_exitcode(status))
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def main() -> None:
    preload(json.loads(sys.argv[1]))
    assert not any(name.split(".")[0] in OWN for name in sys.modules), "project code preloaded"
    print("ready", flush=True)
    for line in sys.stdin:
        print(run(json.loads(line)), flush=True)


if __name__ == "__main__":
    main()
