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
and the siblings before it dropped, so memory stays bounded. Like copipe,
it reads only what it needs: the WHERE field first (a record failing it
is dropped), and only the children FIELDS names when they are children.

usage: lxml_records.py FILE ELEMENT FIELDS|- WHERE|-
"""
import csv
import sys

from lxml import etree

XML_NS = "http://www.w3.org/XML/1998/namespace"

# lxml's `{uri}local` tag (or a comment's or PI's tag) -> the name as
# written, `prefix:local` or `local` (None: not an element). Keyed by tag
# alone: a namespace written with two different prefixes in one document
# would be named by the first.
NAMES = {}


def name_of(child):
    tag = child.tag
    if not isinstance(tag, str):
        NAMES[tag] = None
        return None
    local = tag.rpartition("}")[2]
    name = f"{child.prefix}:{local}" if child.prefix else local
    NAMES[tag] = name
    return name


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


def attrs_of(elem, rel, rec):
    for k, v in elem.items():
        name = f"{rel}@{attr_name(k, elem)}"
        if name not in rec:
            rec[name] = v


def fields_of(elem, rel, rec):
    """Adds the fields of elem's descendants to rec, in document order
    (copipe's order); rel is elem's path from the record, with a `/`."""
    for child in elem:
        name = NAMES.get(child.tag, 0)
        if name == 0:
            name = name_of(child)
        if name is None:
            continue
        path = rel + name if rel else name
        if child.keys():
            attrs_of(child, path + "/", rec)
        if len(child):
            fields_of(child, path + "/", rec)
        elif path not in rec:
            rec[path] = child.text or ""


def leaf(elem, name):
    """The text of elem's first leaf child called name (None if none)."""
    for child in elem:
        n = NAMES.get(child.tag, 0)
        if n == 0:
            n = name_of(child)
        if n == name and not len(child):
            return child.text or ""
    return None


def leaves(elem, wanted, rec):
    """Adds the text of elem's leaf children named in wanted to rec."""
    for child in elem:
        n = NAMES.get(child.tag, 0)
        if n == 0:
            n = name_of(child)
        if n in wanted and n not in rec and not len(child):
            rec[n] = child.text or ""


def main():
    path, element, fields, where = sys.argv[1:5]
    cols = None if fields == "-" else fields.split(",")
    key, value = (None, None) if where == "-" else where.split("=", 1)
    prefix, _, local = element.rpartition(":")
    prefix = prefix or None

    # As copipe does, only what is asked for is gathered: a record whose
    # WHERE field (a child's) fails is dropped before its other fields are
    # read, and with FIELDS naming only children, only children are read.
    def child_name(f):
        return "/" not in f and "@" not in f

    early = key is not None and child_name(key)
    only = None
    if cols is not None and all(map(child_name, cols)) and (key is None or early):
        only = set(cols) | ({key} if key else set())

    out = csv.writer(sys.stdout, lineterminator="\n")
    if cols is not None:
        out.writerow(cols)
    for _, elem in etree.iterparse(path, events=("end",), tag="{*}" + local):
        if elem.prefix == prefix and (not early or leaf(elem, key) == value):
            rec = {}
            if only is not None:
                leaves(elem, only, rec)
            else:
                if elem.keys():
                    attrs_of(elem, "", rec)
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
