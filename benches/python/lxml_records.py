"""lxml iterparse version of `copipe records FILE --element NAME
[--where FIELD=VALUE] [--fields A,B]`: each record's leaf children's text
by name, printed as CSV. The usual streaming idiom (clear each element,
drop the siblings before it) keeps memory bounded.

usage: lxml_records.py FILE ELEMENT FIELDS|- WHERE|-
"""
import csv
import sys

from lxml import etree


def main():
    path, element, fields, where = sys.argv[1:5]
    fields = None if fields == "-" else fields.split(",")
    key, value = (None, None) if where == "-" else where.split("=", 1)
    out = csv.writer(sys.stdout, lineterminator="\n")
    header = False
    for _, elem in etree.iterparse(path, events=("end",), tag=element):
        rec = {}
        for child in elem:
            if len(child) == 0 and child.tag not in rec:
                rec[child.tag] = child.text or ""
        if key is None or rec.get(key) == value:
            cols = fields or list(rec)
            if not header:
                out.writerow(cols)
                header = True
            out.writerow([rec.get(c, "") for c in cols])
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]


main()
