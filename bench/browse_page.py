"""Benchmark: a browse page (`python cli.py browse`) opened and searched in headless Chromium.

    python bench/browse_page.py --page runs/x/browse.html [--query WORDS [--posting ID]] \
        [--screenshot docs/browse.png]

Opens the page through the DevTools protocol (tests/chromium.py), types each query one
character at a time into the search box and reads the page's own timing of every keystroke's
search (index look-up and result list, `performance.now()`). Then types --query (default: the
id of the first posting the page offers), opens its result --posting (default: the first) and,
with --screenshot, saves a 1280-pixel-wide PNG of the page. Prints one JSON line: page size,
load time (navigation start to the end of the load event, as the page measures it),
per-query keystroke timings (median and max), console errors.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chromium import open_page  # noqa: E402

QUERIES = ("kaos polos", "hijab instan", "samsung a", "masker", "sepatu sneakers pria")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", required=True, type=Path)
    parser.add_argument("--screenshot", type=Path, help="PNG of the page showing a posting")
    parser.add_argument("--query", help="typed last (default: the first posting the page offers)")
    parser.add_argument("--posting", help="the result of --query to open (default: the first)")
    parser.add_argument("--height", type=int, default=1400, help="screenshot height (pixels)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as profile:
        with open_page(args.page, Path(profile), width=1280) as page:
            # navigation start to the end of the load event: parsing, JSON and search index
            loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            first_id = page.evaluate("document.querySelector('#posting a.pid').textContent")
            queries = [first_id, *QUERIES]
            timings = {}
            for query in queries:
                _clear(page)
                keystrokes = []
                for char in query:
                    page.type(char)
                    keystrokes.append(page.evaluate("window.browse.lastSearchMs"))
                timings[query] = {"median_ms": round(statistics.median(keystrokes), 2),
                                  "max_ms": round(max(keystrokes), 2),
                                  "results": page.evaluate("document.getElementById('count')"
                                                           ".textContent")}
            _clear(page)
            page.type(args.query or first_id)
            chosen = args.posting or page.evaluate("document.querySelector('#results a.pid')"
                                                   ".textContent")
            page.evaluate("Array.from(document.querySelectorAll('#results a.pid')).find("
                          f"(a) => a.textContent === {json.dumps(chosen)}).click()")
            page.evaluate("new Promise((resolve) => { (function shown() {"
                          " if (document.getElementById('posting').dataset.id === "
                          f"{json.dumps(chosen)}) resolve(); else setTimeout(shown, 10);"
                          " })(); })")
            if args.screenshot:
                args.screenshot.write_bytes(page.screenshot(width=1280, height=args.height))
            errors = page.errors()
    print(json.dumps({"page_mb": round(args.page.stat().st_size / 1e6, 2),
                      "load_ms": round(loaded),
                      "max_keystroke_ms": max(t["max_ms"] for t in timings.values()),
                      "queries": timings, "console_errors": errors}))


def _clear(page) -> None:
    page.evaluate("(() => { const box = document.getElementById('search'); box.value = '';"
                  " box.focus(); })()")


if __name__ == "__main__":
    main()
