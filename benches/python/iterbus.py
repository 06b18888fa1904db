# The seed's iterbus.py: python3 iterbus.py FILE
# (cElementTree is ElementTree's C accelerator, imported by default in Python 3.)
import sys
from xml.etree.ElementTree import iterparse

for event,elem in iterparse(sys.argv[1],('start','end')):
    if event == 'start' and elem.tag == 'buses':
        buses = elem
    elif event == 'end' and elem.tag == 'bus':
        busdict = dict((child.tag,child.text)
                        for child in elem)
        if (busdict['route'] == '22' and
            busdict['direction'] == 'North Bound'):
            print("%(id)s,%(route)s,\"%(direction)s\","\
                  "%(latitude)s,%(longitude)s" % busdict)
        buses.remove(elem)
