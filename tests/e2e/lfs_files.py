#!/usr/bin/env python3
"""Many files made or checked in one process (lib.sh: add_lfs_files,
assert_stored, assert_checkout). One process per file made the tests with
hundreds of objects spend minutes on their own bookkeeping.

Usage:
    lfs_files.py make <dir> <path>=<bytes>...
        random bytes of each size at <dir>/<path> (parents made; 0: empty)
    lfs_files.py stored <store-dir> <original-file>...
        the folder store holds each file's object at its layout path
        (<oid[0:2]>/<oid[2:4]>/<oid>), byte-identical and hashing to the oid
    lfs_files.py checkout <original-repo> <clone> <path>...
        each file in the clone is byte-identical to the original and hashes
        to the oid its pointer in HEAD names, and the clone's LFS cache
        holds a verified copy; an empty file must have no pointer

Exits 1 with the first problem on stderr.
"""

import hashlib
import os
import re
import subprocess
import sys

POINTER_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)


def problem(text):
    sys.stderr.write(text + "\n")
    sys.exit(1)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
            if block_a != block_b:
                return False
            if not block_a:
                return True


def make(root, specs):
    for spec in specs:
        path, _, size = spec.rpartition("=")
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        left = int(size)
        with open(full, "wb") as f:
            while left:
                block = os.urandom(min(left, 1 << 20))
                f.write(block)
                left -= len(block)
        if os.path.getsize(full) != int(size):
            problem("could not create %s random bytes in %s" % (size, full))


def stored(store, originals):
    for original in originals:
        oid = sha256_of(original)
        path = os.path.join(store, oid[0:2], oid[2:4], oid)
        if not os.path.isfile(path):
            problem("object %s (%s) is not in the store at %s" % (oid, original, path))
        size, want = os.path.getsize(path), os.path.getsize(original)
        if size != want:
            problem("stored %s has %d bytes, %s has %d" % (path, size, original, want))
        if sha256_of(path) != oid:
            problem("stored %s does not hash to its oid %s" % (path, oid))
        if not same_bytes(path, original):
            problem("stored %s differs from %s" % (path, original))


def pointers(clone, paths):
    """The oid in HEAD's pointer for each path (None for a file git holds
    itself), read through one git cat-file --batch."""
    request = "".join("HEAD:%s\n" % p for p in paths).encode()
    out = subprocess.run(["git", "-C", clone, "cat-file", "--batch"], input=request,
                         stdout=subprocess.PIPE, check=True).stdout
    oids, at = [], 0
    for path in paths:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].split()
        if len(header) != 3:
            problem("%s is not in HEAD of %s" % (path, clone))
        size = int(header[2])
        body = out[header_end + 1:header_end + 1 + size]
        at = header_end + 1 + size + 1
        match = POINTER_OID.search(body)
        oids.append(match.group(1).decode() if match else None)
    return oids


def checkout(original_repo, clone, paths):
    for path, oid in zip(paths, pointers(clone, paths)):
        here, there = os.path.join(clone, path), os.path.join(original_repo, path)
        if not os.path.isfile(here):
            problem("%s is missing from %s" % (path, clone))
        if not same_bytes(there, here):
            problem("%s in %s differs from the original" % (path, clone))
        if oid is None:
            if os.path.getsize(there):
                problem("%s (non-empty) is not an LFS pointer in HEAD" % path)
            continue
        if sha256_of(here) != oid:
            problem("%s in %s does not hash to its pointer's oid %s" % (path, clone, oid))
        cached = os.path.join(clone, ".git", "lfs", "objects", oid[0:2], oid[2:4], oid)
        if not os.path.isfile(cached) or sha256_of(cached) != oid:
            problem("the LFS cache of %s lacks a verified %s" % (clone, cached))


def main(argv):
    if len(argv) < 2:
        problem(__doc__)
    verb, args = argv[1], argv[2:]
    if verb == "make" and args:
        make(args[0], args[1:])
    elif verb == "stored" and args:
        stored(args[0], args[1:])
    elif verb == "checkout" and len(args) >= 2:
        checkout(args[0], args[1], args[2:])
    else:
        problem(__doc__)


if __name__ == "__main__":
    main(sys.argv)
