#!/usr/bin/env bash
# Renders the report of a made-up run (tests/sim/synthetic_run.hpp) in
# headless Chromium and checks the screenshot: every plot area holds a drawn
# plot with pixels of each of its data colours (tests/sim/png_check.py).
#
#   bash tests/sim/test_report_screenshot.sh <report_example>
# Exits 77 (skipped) when chromium is not installed. With
# FERRY_REPORT_SCREENSHOT=<file>, the screenshot is also copied there.
set -euo pipefail
example="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z $browser ]]; then
  echo "SKIP: chromium is not installed"
  exit 77
fi
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-report-screenshot.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Chromium writes crash reports under XDG_CONFIG_HOME even with --user-data-dir.
export XDG_CONFIG_HOME="$work/config"
width=1000
chrome() {
  "$browser" --headless --no-sandbox --user-data-dir="$work/profile" --hide-scrollbars \
    --force-device-scale-factor=1 "$@" 2>>"$work/chromium.log"
}

"$example" "$work/run"
report="$work/run/report.html"
grep -q '<svg' "$report" || { echo "FAIL: no inline SVG in $report" >&2; exit 1; }

# The page's height and each plot's box, measured in a copy with a script
# (the report itself has none) and read back from the DOM.
python3 - "$report" "$work/measure.html" <<'PY'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
script = """<script>
const plots = {};
for (const figure of document.querySelectorAll('figure[id^="plot-"]')) {
  const box = figure.querySelector('svg').getBoundingClientRect();
  plots[figure.id] = {x: box.left + scrollX, y: box.top + scrollY, w: box.width, h: box.height,
                      colours: figure.dataset.colours};
}
document.body.dataset.layout = JSON.stringify(
  {height: document.documentElement.scrollHeight, plots: plots});
</script>"""
open(sys.argv[2], "w", encoding="utf-8").write(page.replace("</body>", script + "</body>"))
PY
chrome --window-size=$width,1000 --dump-dom "file://$work/measure.html" >"$work/dom.html"
python3 - "$work/dom.html" "$work/layout.json" <<'PY'
import html, json, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
match = re.search(r'data-layout="([^"]*)"', dom)
if not match:
    sys.exit("FAIL: the measuring page did not report its layout")
layout = json.loads(html.unescape(match.group(1)))
expected = {"plot-throughput", "plot-in_flight", "plot-errors", "plot-latency", "plot-recovery"}
if set(layout["plots"]) != expected:
    sys.exit(f"FAIL: plots {sorted(layout['plots'])}, expected {sorted(expected)}")
json.dump(layout, open(sys.argv[2], "w"))
print(f"page height {layout['height']} px, {len(layout['plots'])} plots")
PY
height="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["height"]))' "$work/layout.json")"

# The window is the page's size: --screenshot captures the window only.
chrome --window-size=$width,"$height" --screenshot="$work/report.png" "file://$report" >/dev/null
[[ -s $work/report.png ]] || { echo "FAIL: no screenshot" >&2; cat "$work/chromium.log" >&2; exit 1; }
python3 "$here/png_check.py" "$work/report.png" "$work/layout.json"
if [[ -n ${FERRY_REPORT_SCREENSHOT:-} ]]; then
  cp "$work/report.png" "$FERRY_REPORT_SCREENSHOT"
fi
echo "PASS: every plot of the report is drawn, with its data"
