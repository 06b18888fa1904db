# copipe.py
#
# A simple example showing how to hook up a pipeline with
# coroutines.   To run this, you will need a log file.
# Run the program logsim.py in the background to get a data
# source.

import py2print  # port: Python 2 print semantics (soft space)
from coroutine import coroutine

# A data source.  This is not a coroutine, but it sends
# data into one (target)

import time
def follow(thefile, target):
    # thefile.seek(0,2)    # port: static form, from the start of the file
    while True:
         line = thefile.readline()
         if not line:
             break              # port: static form, stop at the end
         target.send(line)

# A filter.

@coroutine
def grep(pattern,target):
    while True:
        line = (yield)           # Receive a line
        if pattern in line:
            target.send(line)    # Send to next stage

# A sink.  A coroutine that receives data

@coroutine
def printer():
    while True:
         line = (yield)
         print(line, end=' ')

# Example use
if __name__ == '__main__':
    f = open("access-log", errors="surrogateescape")  # port: bytes as Python 2 read them
    follow(f,
           grep('python',
           printer()))
