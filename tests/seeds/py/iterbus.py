# iterbus.py
#
# An example of incremental XML parsing with the ElementTree library

import py2print  # port: Python 2 print semantics (soft space)
from xml.etree.ElementTree import iterparse  # port: cElementTree is gone in 3.9

for event,elem in iterparse("allroutes.xml",('start','end')):
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
