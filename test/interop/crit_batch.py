#!/usr/bin/python3
# What `crit decode`, `crit decode --pretty` and `crit encode` compute
# (pycriu.images.load and pycriu.images.dumps, the functions crit's CLI
# calls), for many image files in one Python process, plus pycriu's schema
# (message -> field name -> number). Prints one JSON document:
#   {"schema": {...}, "files": {PATH: {"plain": ..., "pretty": ...,
#    "plain_encoded": BASE64, "pretty_encoded": BASE64} or {"error": TEXT}}}
# Run with the interpreter crit itself uses (/usr/bin/python3).
import base64
import copy
import json
import sys

from pycriu import images
from pycriu.images import pb


def schema():
    out = {}

    def add(desc):
        out[desc.name] = {f.name: f.number for f in desc.fields}
        for nested in desc.nested_types:
            add(nested)

    for name in dir(pb):
        desc = getattr(getattr(pb, name), 'DESCRIPTOR', None)
        if desc is not None and hasattr(desc, 'fields'):
            add(desc)
    return out


def encoded(img):
    return base64.b64encode(images.dumps(copy.deepcopy(img))).decode()


def main():
    files = {}
    for path in sys.argv[1:]:
        try:
            with open(path, 'rb') as f:
                plain = images.load(f, False)
            with open(path, 'rb') as f:
                pretty = images.load(f, True)
            files[path] = {'plain': plain, 'pretty': pretty,
                           'plain_encoded': encoded(plain), 'pretty_encoded': encoded(pretty)}
        except Exception as e:  # crit exits 1 on these
            files[path] = {'error': '%s: %s' % (type(e).__name__, e)}
    json.dump({'schema': schema(), 'files': files}, sys.stdout)


main()
