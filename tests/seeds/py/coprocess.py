# coprocess.py
#
# An example of running a coroutine in a subprocess connected by a pipe

import py2print  # port: Python 2 print semantics (soft space)
import pickle as pickle
from coroutine import *

@coroutine
def sendto(f):
    try:
        while True:
            item = (yield)
            pickle.dump(item,f)
            f.flush()
    except StopIteration:
        f.close()

def recvfrom(f,target):
    try:
        while True:
            item = pickle.load(f)
            target.send(item)
    except EOFError:
        target.close()


# Example use
if __name__ == '__main__':
    import xml.sax
    from cosax import EventHandler
    from buses import *

    import subprocess, sys  # port: sys for sys.executable
    p = subprocess.Popen([sys.executable, __file__.replace('coprocess.py', 'busproc.py')],  # port: this interpreter, this directory
                         stdin=subprocess.PIPE)

    xml.sax.parse("allroutes.xml",
                  EventHandler(
                          buses_to_dicts(
                          sendto(p.stdin))))
    p.stdin.close(); p.wait()  # port: let busproc finish before recording stops
