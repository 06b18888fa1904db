# benchmark.py: the seed's micro benchmark, sending 1,000,000 messages into
# a coroutine vs. into an object, printed as nanoseconds per send so it can
# stand beside `cargo bench --bench send` (run both in one session: the
# machine is shared and its speed varies).
#
#     python3 benches/python/benchmark.py [repeats]
#
# The code under test is the seed's, unchanged; only the reporting differs:
# timeit runs 1,000,000 sends `repeats` times (default 7) and we print the
# median of the thread's CPU time (time.thread_time, which leaves out the
# time the process spends descheduled on a loaded machine, as the Rust side
# table does) and the median wall-clock time.

import statistics
import sys
import time
from timeit import repeat


def coroutine(func):
    def start(*args, **kwargs):
        cr = func(*args, **kwargs)
        next(cr)
        return cr
    return start


# An object
class GrepHandler(object):
    def __init__(self, pattern, target):
        self.pattern = pattern
        self.target = target

    def send(self, line):
        if self.pattern in line:
            self.target.send(line)


# A coroutine
@coroutine
def grep(pattern, target):
    while True:
        line = (yield)
        if pattern in line:
            target.send(line)


# A null-sink to send data
@coroutine
def null():
    while True:
        item = (yield)


line = 'python is nice'
p1 = grep('python', null())          # Coroutine
p2 = GrepHandler('python', null())   # Object

NUMBER = 1_000_000


def median_ns(stmt, repeats, timer):
    times = repeat(stmt, globals=globals(), number=NUMBER, repeat=repeats,
                   timer=timer)
    return statistics.median(t / NUMBER * 1e9 for t in times)


def report(name, stmt, repeats):
    cpu = median_ns(stmt, repeats, time.thread_time)
    wall = median_ns(stmt, repeats, time.perf_counter)
    print(f"{name}: {cpu:.1f} ns/send (CPU), {wall:.1f} ns/send (wall), "
          f"medians of {repeats} x {NUMBER} sends")


if __name__ == '__main__':
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(sys.version.split()[0])
    report("coroutine", "p1.send(line)", repeats)
    report("object", "p2.send(line)", repeats)
