#!/usr/bin/python3
"""ferry-sim's own S3 client (boto3), independent of Ferry: it makes the
bucket, then keeps a local folder a copy of what S3 shows, so that the
harness's invariants read S3 through that folder.

usage:
  s3_mirror.py mkbucket BUCKET
  s3_mirror.py mirror BUCKET PREFIX DIR PASSES_FILE

mirror lists every object under PREFIX/ again and again (every page) and
makes DIR hold exactly the listed keys in git-lfs's layout
(PREFIX/<oid[0:2]>/<oid[2:4]>/<oid> -> DIR/<oid[0:2]>/<oid[2:4]>/<oid>): a key
that is new or changed (ETag, size) is downloaded under a hidden temporary
name and renamed into place, so the folder shows only whole answers of S3; a
file whose key is gone is removed. After each whole pass it writes the
number of passes to PASSES_FILE (renamed into place). It runs until killed.

The server and keys come from FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY and
FERRY_S3_SECRET_KEY; path-style, region us-east-1. Errors go to stderr with
exit status 1.
"""

import concurrent.futures
import os
import re
import sys
import time

for _name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[_name]

import boto3  # noqa: E402 (after the environment is cleaned)
import botocore.config  # noqa: E402

LAYOUT = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["FERRY_S3_ENDPOINT"],
        aws_access_key_id=os.environ["FERRY_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["FERRY_S3_SECRET_KEY"],
        region_name="us-east-1",
        config=botocore.config.Config(
            s3={"addressing_style": "path"}, proxies={}, retries={"max_attempts": 3}
        ),
    )


def write_atomically(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".mirror-tmp")
    with open(tmp, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def fetch(s3, bucket, key, path):
    """Downloads key to path; False when it was deleted since the listing."""
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return False  # the next pass sees it gone
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, data)
    return True


def mirror(s3, bucket, prefix, into, passes_file):
    seen = {}  # relative path -> (etag, size)
    passes = 0
    # Downloads in parallel, so the folder keeps up with a fast upload.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
    while True:
        listed = {}
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for page in pages:
            for entry in page.get("Contents", []):
                match = LAYOUT.match(entry["Key"][len(prefix) + 1 :])
                oid = match.group(3) if match else ""
                if match and match.group(1) == oid[:2] and match.group(2) == oid[2:4]:
                    listed[match.group(0)] = (entry["Key"], entry["ETag"], entry["Size"])
        changed = [
            (rel, key, etag, size)
            for rel, (key, etag, size) in listed.items()
            if seen.get(rel) != (etag, size)
        ]
        fetched = pool.map(lambda c: fetch(s3, bucket, c[1], os.path.join(into, c[0])), changed)
        for (rel, _, etag, size), ok in zip(changed, list(fetched)):
            if ok:
                seen[rel] = (etag, size)
        for rel in [rel for rel in seen if rel not in listed]:
            try:
                os.remove(os.path.join(into, rel))
            except FileNotFoundError:
                pass
            del seen[rel]
        passes += 1
        os.makedirs(os.path.dirname(passes_file), exist_ok=True)
        write_atomically(passes_file, str(passes).encode())
        time.sleep(0.01)  # polling interval: leaves the cores to what is measured


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "mkbucket":
            client().create_bucket(Bucket=argv[2])
        elif len(argv) == 6 and argv[1] == "mirror":
            mirror(client(), argv[2], argv[3], argv[4], argv[5])
        else:
            sys.stderr.write(__doc__)
            return 2
    except Exception as e:  # one line on stderr, for the harness's message
        sys.stderr.write("s3_mirror.py: %s: %s\n" % (type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
