"""Run the Autobahn|Testsuite fuzzingserver bound to 127.0.0.1 only.

usage: python3 fuzzingserver.py SPEC.json
PYTHONPATH must hold the `autobahntestsuite` package of a Python 3 port of the
suite (its code is third-party and is not part of this repository) and
Debian's python3-twisted and python3-autobahn.
"""
import json
import platform
import sys
import types

if platform.python_implementation() == "PyPy":
    # Debian's cryptography does not load under PyPy; no wss:// is needed.
    try:
        import twisted.internet.ssl  # noqa: F401
    except ImportError:
        import twisted.internet
        sys.modules["twisted.internet.ssl"] = twisted.internet.ssl = types.ModuleType("twisted.internet.ssl")

from autobahntestsuite import choosereactor  # noqa: F401,E402  (installs the reactor)
from autobahntestsuite import fuzzing  # noqa: E402

_listen = fuzzing.listenWS


def _loopback(factory, contextFactory=None, backlog=50, interface="127.0.0.1"):
    return _listen(factory, contextFactory, backlog=backlog, interface="127.0.0.1")


fuzzing.listenWS = _loopback


def _default(o):
    # Reports of failed cases hold raw bytes; render them instead of crashing.
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "backslashreplace")
    raise TypeError(type(o).__name__)


fuzzing.json = types.SimpleNamespace(
    dumps=lambda *a, **k: json.dumps(*a, default=_default, **k),
    loads=json.loads, load=json.load, dump=json.dump)

from autobahntestsuite import wstest  # noqa: E402

sys.argv = [sys.argv[0], "-m", "fuzzingserver", "-s", sys.argv[1], "-u", "0"]
wstest.run()
