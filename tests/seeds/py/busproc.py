# busproc.py
#
# Bus processor.  This runs as a subprocess from the coprocess.py example

import py2print  # port: Python 2 print semantics (soft space)
import sys
from coprocess import recvfrom
from buses import *

recvfrom(sys.stdin.buffer,  # port: pickle reads bytes
         filter_on_field("route","22",
         filter_on_field("direction","North Bound",
         bus_locations())))
