"""Lists tachyon-ring's public API, one line per exported path, from the crate's rustdoc.

`cargo public-api` needs a nightly toolchain (rustdoc's JSON output); this reads the stable
HTML instead: every item of `all.html` (paths as users write them, `layout::SlotHeader`) and,
on each item's page, its methods, fields, variants and associated items. Used to show that a
change that moves code (issue 19) leaves the API as it was:

    python3 python/public_api.py > before.txt   # ... change ... then again > after.txt; diff
"""

import html
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FEATURES = "async,tracing"  # what docs.rs documents


def main() -> int:
    subprocess.run(
        ["cargo", "doc", "-p", "tachyon-ring", "--no-deps", "--quiet", "--features", FEATURES],
        cwd=ROOT, check=True, env={**__import__("os").environ, "RUSTDOCFLAGS": ""},
    )
    target = pathlib.Path(__import__("os").environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    doc = target / "doc" / "tachyon_ring"
    index = (doc / "all.html").read_text()
    lines = []
    for href, name in re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', index):
        name = html.unescape(name)
        kind = href.rsplit("/", 1)[-1].split(".", 1)[0]
        lines.append(f"{kind} tachyon_ring::{name}")
        page = (doc / href).read_text()
        # Members shown on the item's own page (inherent and trait impls alike).
        for member in sorted(set(re.findall(
                r'id="((?:method|tymethod|structfield|variant|associatedconstant|associatedtype)'
                r'\.[A-Za-z0-9_]+)"', page))):
            lines.append(f"{kind} tachyon_ring::{name} {member}")
    print("\n".join(sorted(set(lines))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
