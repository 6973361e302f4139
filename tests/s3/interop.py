#!/usr/bin/python3
"""An S3 client independent of Ferry (boto3), to cross-check what Ferry stores.

usage: /usr/bin/python3 tests/s3/interop.py COMMAND ARGS...

  mkbucket BUCKET            create BUCKET
  put BUCKET KEY FILE        upload FILE as KEY (multipart above 8 MiB, as boto3 does)
  get BUCKET KEY FILE        download KEY into FILE
  sha256 BUCKET KEY          print the hex SHA-256 of KEY's content
  ls BUCKET PREFIX           print "KEY SIZE" for every object under PREFIX
  parts BUCKET KEY           print "UPLOAD_ID PARTS" for every multipart upload of KEY
                             in progress (PARTS: how many parts the server lists)
  uploads BUCKET PREFIX      print "KEY UPLOAD_ID" for every multipart upload in
                             progress under PREFIX

The server and keys come from FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY and
FERRY_S3_SECRET_KEY (what tests/s3/radosgw.sh writes to DIR/env); path-style
addressing, region us-east-1, no proxy. Listings follow every page. Errors go to
stderr with exit status 1. Use the Debian interpreter (/usr/bin/python3), which
has python3-boto3.
"""

import hashlib
import os
import sys

# Only the FERRY_S3_* variables configure this client: AWS_PROFILE, a CA
# bundle or a config file from the caller's environment must not steer it.
for _name in [name for name in os.environ if name.startswith("AWS_")]:
    del os.environ[_name]

import boto3  # noqa: E402 (after the environment is cleaned)
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

PROG = "interop.py"


class Failure(Exception):
    """An error reported as one line on stderr."""


def env(name):
    value = os.environ.get(name, "")
    if not value:
        raise Failure(f"{name} is not set (source the env file tests/s3/radosgw.sh writes)")
    return value


def client():
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        proxies={},
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=env("FERRY_S3_ENDPOINT"),
        aws_access_key_id=env("FERRY_S3_ACCESS_KEY"),
        aws_secret_access_key=env("FERRY_S3_SECRET_KEY"),
        region_name="us-east-1",
        config=config,
    )


def pages(s3, operation, **arguments):
    return s3.get_paginator(operation).paginate(**arguments)


def mkbucket(s3, bucket):
    s3.create_bucket(Bucket=bucket)


def put(s3, bucket, key, path):
    s3.upload_file(path, bucket, key)


def get(s3, bucket, key, path):
    s3.download_file(bucket, key, path)


def sha256(s3, bucket, key):
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    print(digest.hexdigest())


def ls(s3, bucket, prefix):
    for page in pages(s3, "list_objects_v2", Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            print(entry["Key"], entry["Size"])


def in_progress(s3, bucket, prefix):
    for page in pages(s3, "list_multipart_uploads", Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            yield upload["Key"], upload["UploadId"]


def parts(s3, bucket, key):
    for upload_key, upload_id in in_progress(s3, bucket, key):
        if upload_key != key:
            continue
        listed = sum(
            len(page.get("Parts", []))
            for page in pages(s3, "list_parts", Bucket=bucket, Key=key, UploadId=upload_id)
        )
        print(upload_id, listed)


def uploads(s3, bucket, prefix):
    for upload_key, upload_id in in_progress(s3, bucket, prefix):
        print(upload_key, upload_id)


COMMANDS = {
    "mkbucket": (mkbucket, ["BUCKET"]),
    "put": (put, ["BUCKET", "KEY", "FILE"]),
    "get": (get, ["BUCKET", "KEY", "FILE"]),
    "sha256": (sha256, ["BUCKET", "KEY"]),
    "ls": (ls, ["BUCKET", "PREFIX"]),
    "parts": (parts, ["BUCKET", "KEY"]),
    "uploads": (uploads, ["BUCKET", "PREFIX"]),
}


def main(argv):
    if len(argv) < 1 or argv[0] not in COMMANDS:
        raise Failure("usage: interop.py " + " | ".join(
            " ".join([name] + names) for name, (_, names) in COMMANDS.items()))
    command, names = COMMANDS[argv[0]]
    if len(argv) - 1 != len(names):
        raise Failure(f"usage: interop.py {argv[0]} {' '.join(names)}")
    try:
        command(client(), *argv[1:])
    except botocore.exceptions.ClientError as error:
        raise Failure(f"{argv[0]} {' '.join(argv[1:])}: {error}") from None
    except (botocore.exceptions.BotoCoreError, OSError) as error:
        raise Failure(f"{argv[0]} {' '.join(argv[1:])}: {error}") from None


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        sys.exit(1)
