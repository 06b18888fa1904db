# record_servers.py
#
# Records what each seed echo server prints while one client connects,
# sends b"hello\n", reads it back and closes: runs the ported server
# (py/NAME.py) with CPython 3.11 on a free port of 127.0.0.1, waits for
# "Client closed" and half a second more, then stops it. The client's
# port is written as PORT; "I'm alive!" lines (echobad, echogood print
# one per scheduler turn) are left out. Output: expected/NAME.out.
import os, socket, subprocess, sys, time, threading

here = os.path.dirname(os.path.abspath(__file__))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def record(name):
    port = free_port()
    env = dict(os.environ, PORT=str(port), PYTHONPATH=os.path.join(here, "py"), PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.Popen([sys.executable, "-u", os.path.join(here, "py", name + ".py")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    lines = []
    closed = threading.Event()
    def reader():
        for raw in p.stdout:
            line = raw.decode()
            if line == "I'm alive!\n":
                continue
            lines.append(line)
            if line == "Client closed\n":
                closed.set()
    t = threading.Thread(target=reader, daemon=True); t.start()
    for _ in range(100):
        try:
            c = socket.create_connection(("127.0.0.1", port)); break
        except OSError:
            time.sleep(0.05)
    me = c.getsockname()[1]
    c.sendall(b"hello\n")
    got = b""
    while len(got) < 6:
        got += c.recv(100)
    assert got == b"hello\n", got
    c.close()
    closed.wait(10)
    time.sleep(0.5)
    p.kill(); p.wait()
    out = "".join(lines).replace(str(me), "PORT")
    open(os.path.join(here, "expected", name + ".out"), "w").write(out)
    print(name, repr(out))

for n in sys.argv[1:] or ["echobad", "echogood", "echogood2", "echoserver", "echoserver2"]:
    record(n)
