# follow.py
#
# A generator that follows a log file like Unix 'tail -f'.
# Static form: from the start of the file to its end.
import py2print

import time
def follow(thefile):
    # thefile.seek(0,2)      # Go to the end of the file
    while True:
         line = thefile.readline()
         if not line:
             break              # static form: stop at the end
         yield line

# Example use
if __name__ == '__main__':
    logfile = open("access-log", errors="surrogateescape")  # port: bytes as Python 2 read them
    for line in follow(logfile):
        print(line, end=' ')
