#!/usr/bin/env python3
"""Checks a screenshot of report.html: every plot area is drawn, with its data.

  png_check.py SCREENSHOT.png LAYOUT.json

LAYOUT.json (measured in the same browser) gives each plot's box in page
pixels and the colours its data is drawn in. Each box must hold many
non-white pixels and many distinct colours (axes and text alone give few),
and pixels of every data colour above the legend. Decodes the PNG with zlib (no PIL here).
"""
import json
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    channels = {2: 3, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        sys.exit(f"{path}: unsupported PNG (depth {depth}, colour type {colour_type})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def main():
    png, layout_file = sys.argv[1], sys.argv[2]
    with open(layout_file) as f:
        layout = json.load(f)
    width, height, channels, rows = read_png(png)
    plots = layout["plots"]
    if not plots:
        sys.exit("the page has no plots")
    failures = []
    for plot_id, box in plots.items():
        x0, y0 = max(int(box["x"]), 0), max(int(box["y"]), 0)
        x1, y1 = min(int(box["x"] + box["w"]), width), min(int(box["y"] + box["h"]), height)
        if x1 - x0 < 100 or y1 - y0 < 100:
            failures.append(f"{plot_id}: box {x0},{y0}-{x1},{y1} is outside or too small for the {width}x{height} screenshot")
            continue
        # The legend is below the graph, in the box's bottom quarter: data
        # colours count only above it, so a legend entry alone is not data.
        legend_top = y0 + (y1 - y0) * 3 // 4
        counts, graph_counts = {}, {}
        for y in range(y0, y1):
            row = rows[y]
            for x in range(x0, x1):
                pixel = row[x * channels:x * channels + 3]
                counts[pixel] = counts.get(pixel, 0) + 1
                if y < legend_top:
                    graph_counts[pixel] = graph_counts.get(pixel, 0) + 1
        total = (x1 - x0) * (y1 - y0)
        drawn = total - counts.get(b"\xff\xff\xff", 0)
        wanted = [bytes.fromhex(c.lstrip("#")) for c in box["colours"].split()]
        near = {c.hex(): sum(n for p, n in graph_counts.items()
                             if max(abs(p[i] - c[i]) for i in range(3)) <= 8)
                for c in wanted}
        print(f"{plot_id}: {x1 - x0}x{y1 - y0} px, {100.0 * drawn / total:.1f}% drawn, "
              f"{len(counts)} colours, data colours {near}")
        if drawn < 0.02 * total:
            failures.append(f"{plot_id}: only {drawn} of {total} pixels are not white")
        if len(counts) < 16:
            failures.append(f"{plot_id}: only {len(counts)} distinct colours")
        for colour, n in near.items():
            if n < 10:
                failures.append(f"{plot_id}: {n} pixels of data colour #{colour}")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
