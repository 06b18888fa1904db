# py2print.py
#
# Python 2's print statement on CPython 3: `import py2print` first, then
# `print(x, end=' ')` behaves as `print x,` (a soft space), not as
# "x and a trailing space". Python 2 wrote the space *before* the next
# item, and only if the last item did not end in whitespace other than a
# space; a final newline is written at exit if a soft space is pending
# (Py_FlushLine). Checked against CPython 2.7.18.
import atexit
import builtins
import sys

_softspace = False
_print3 = builtins.print


def _print2(*items, sep=' ', end='\n', file=None, flush=False):
    global _softspace
    if file is not None and file is not sys.stdout:
        return _print3(*items, sep=sep, end=end, file=file, flush=flush)
    out = sys.stdout
    for x in items:
        if _softspace:
            out.write(' ')
        s = x if isinstance(x, str) else str(x)
        out.write(s)
        _softspace = not (isinstance(x, str) and s and s[-1].isspace() and s[-1] != ' ')
    if end == ' ':        # `print x,`
        pass
    else:                 # `print x`
        out.write(end)
        _softspace = False
    if flush:
        out.flush()


def _flushline():
    if _softspace:
        sys.stdout.write('\n')


builtins.print = _print2
# Python 2 wrote a log's bytes through unchanged, invalid UTF-8 included.
sys.stdout.reconfigure(errors='surrogateescape')
atexit.register(_flushline)
