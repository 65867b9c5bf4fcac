#!/usr/bin/python3
"""Opens a report's index.html in headless Chromium: checks that it renders and
that every image loads, and keeps a screenshot as a test artifact.

Usage: browser_check.py REPORT_DIR ARTIFACT_DIR

The page itself has no scripts. A copy of the report gets one small script
that, after load, records each <img>'s naturalWidth in the DOM; Chromium's
--dump-dom prints that DOM. Exit 77 (a ctest skip) only when no Chromium is
installed; scripts/setup.sh installs Debian's chromium, so CI runs it.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0); })
                .map(function (i) { return i.getAttribute('src'); });
  var r = {images: imgs.length, bad: bad, height: document.body.scrollHeight,
           text: document.body.innerText.length, title: document.title};
  document.body.setAttribute('data-check', JSON.stringify(r));
});
</script>
</body>"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium_cmd(exe, profile):
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--hide-scrollbars", f"--user-data-dir={profile}"]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def main(report, artifacts):
    exe = find_chromium()
    if not exe:
        print("SKIPPED: no chromium on PATH (scripts/setup.sh installs Debian's chromium)")
        return 77
    os.makedirs(artifacts, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="mdnstab-browser-") as tmp:
        copy = os.path.join(tmp, "report")
        shutil.copytree(report, copy)
        page = os.path.join(copy, "index.html")
        with open(page, encoding="utf-8") as f:
            text = f.read()
        if text.count("</body>") != 1:
            print("FAIL: index.html has no single </body>")
            return 1
        with open(page, "w", encoding="utf-8") as f:
            f.write(text.replace("</body>", CHECK_SCRIPT))
        profile = os.path.join(tmp, "profile")
        cmd = chromium_cmd(exe, profile) + ["--virtual-time-budget=15000", "--dump-dom", "file://" + page]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        m = re.search(r"data-check=\"([^\"]*)\"", r.stdout)
        if not m:
            print("FAIL: no result from the page (chromium exit %d)\n%s" % (r.returncode, r.stderr[-2000:]))
            return 1
        res = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        print(f"browser: {res['images']} images, {len(res['bad'])} not loaded, page height {res['height']} px, "
              f"{res['text']} characters of text, title {res['title']!r}")
        if res["images"] < 1:
            failures.append("the page shows no image")
        for b in res["bad"]:
            failures.append(f"image did not load: {b}")
        if res["height"] < 1000 or res["text"] < 1000:
            failures.append("the page is nearly empty")
        # The screenshot, of the report as it is (no script), kept as an artifact.
        shot = os.path.join(artifacts, "report_screenshot.png")
        if os.path.exists(shot):
            os.remove(shot)
        profile2 = os.path.join(tmp, "profile2")
        cmd = chromium_cmd(exe, profile2) + ["--virtual-time-budget=15000", "--window-size=1280,2400",
                                              f"--screenshot={shot}", "file://" + os.path.abspath(
                                                  os.path.join(report, "index.html"))]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        size = png_size(shot) if os.path.exists(shot) else None
        if size != (1280, 2400):
            failures.append(f"no screenshot of 1280 x 2400 (got {size}; chromium exit {r.returncode})")
        elif os.path.getsize(shot) < 20000:
            failures.append(f"the screenshot is nearly blank ({os.path.getsize(shot)} bytes)")
        else:
            print(f"browser: screenshot {shot} ({os.path.getsize(shot)} bytes)")
    if failures:
        for f in failures:
            print("FAIL:", f)
        print(f"0 passed, {len(failures)} failed")
        return 1
    print("browser: the report renders and every image loads")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
