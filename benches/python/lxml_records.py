"""lxml iterparse version of `copipe records FILE --element NAME
[--where FIELD=VALUE] [--fields A,B]`, printing the same CSV.

Fields are named as copipe names them: by the names as written in the
document (`title`, `m:title`), not lxml's `{namespace}title`, so a
namespaced document (a MediaWiki dump) gives the same columns. A record's
fields are its attributes (`@name`), the text of its leaf descendants by
path (`pos/lat`) and their attributes (`pos/@src`); a repeated field keeps
its first value. The header is the fields of the first record printed
(or FIELDS). Not mirrored: namespace declarations, which copipe lists as
`@xmlns:p` attributes and lxml does not report, and leaves holding
comments or processing instructions (lxml counts them as children).

The usual streaming idiom: `iterparse` with `tag=` (elements named NAME
in any namespace, then the prefix checked), each record cleared after use
and the siblings before it dropped, so memory stays bounded.

usage: lxml_records.py FILE ELEMENT FIELDS|- WHERE|-
"""
import csv
import sys

from lxml import etree

XML_NS = "http://www.w3.org/XML/1998/namespace"


def qname(tag, prefix):
    """`{uri}local` (or `local`) as written: `prefix:local` or `local`."""
    local = tag.rpartition("}")[2]
    return f"{prefix}:{local}" if prefix else local


def attr_name(key, elem):
    if key[0] != "{":
        return key
    uri, _, local = key[1:].partition("}")
    if uri == XML_NS:
        return f"xml:{local}"
    for p, u in elem.nsmap.items():
        if u == uri and p:
            return f"{p}:{local}"
    return local


def fields_of(elem, rel, rec):
    """Adds elem's attributes and its descendants' fields to rec, in
    document order (copipe's order)."""
    for k, v in elem.attrib.items():
        name = f"{rel}@{attr_name(k, elem)}"
        if name not in rec:
            rec[name] = v
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        path = rel + qname(child.tag, child.prefix)
        if len(child) == 0:
            for k, v in child.attrib.items():
                name = f"{path}/@{attr_name(k, child)}"
                if name not in rec:
                    rec[name] = v
            if path not in rec:
                rec[path] = child.text or ""
        else:
            fields_of(child, path + "/", rec)


def main():
    path, element, fields, where = sys.argv[1:5]
    cols = None if fields == "-" else fields.split(",")
    key, value = (None, None) if where == "-" else where.split("=", 1)
    prefix, _, local = element.rpartition(":")
    prefix = prefix or None
    out = csv.writer(sys.stdout, lineterminator="\n")
    if cols is not None:
        out.writerow(cols)
    for _, elem in etree.iterparse(path, events=("end",), tag="{*}" + local):
        if elem.prefix == prefix:
            rec = {}
            fields_of(elem, "", rec)
            if key is None or rec.get(key) == value:
                if cols is None:
                    cols = list(rec)
                    out.writerow(cols)
                out.writerow([rec.get(c, "") for c in cols])
        elem.clear()
        while elem.getprevious() is not None:
            del elem.getparent()[0]


main()
