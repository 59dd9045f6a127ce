"""report.html in a real browser: headless Chromium (Debian's `chromium`) lays the page out,
a script run in the page measures every figure (decoded size, where it sits, how much of it is
ink), a screenshot of the same page is cropped to each figure's box and checked for drawn
pixels, and the rendered tables are counted. Skipped where Chromium is not installed."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from dropbench.report.build import write_report
from test_report import make_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None,
                       reason="needs Debian's chromium (apt-get install chromium)"),
]
WIDTH = 1280
INK = 200  # a pixel with any channel below this is drawn, not background

# Appended to a copy of the page: per figure, its decoded size, its box on the page and the
# share of drawn pixels (the image painted onto a canvas), plus the page's height.
PROBE = """<script>
window.addEventListener('load', () => {
  const figures = [...document.querySelectorAll('figure img')].map(img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < px.length; i += 4) if (Math.min(px[i], px[i + 1], px[i + 2]) < INK) ink++;
    const box = img.getBoundingClientRect();
    return {name: img.alt, width: img.naturalWidth, height: img.naturalHeight,
            ink: ink / Math.max(1, px.length / 4), room: img.closest('figure').clientWidth,
            keyed: img.closest('.with-key') !== null,
            box: [box.left + scrollX, box.top + scrollY, box.width, box.height]};
  });
  const tables = [...document.querySelectorAll('table')].map(t => t.rows.length);
  const root = document.documentElement;
  const images = [...document.querySelectorAll('img')].map(img => img.naturalWidth);
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({figures, tables, images, height: document.body.scrollHeight,
                                    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth});
  document.body.appendChild(out);
});
</script>""".replace("INK", str(INK))


def chromium(tmp_path, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def report(tmp_path):
    """A report with every figure: dropout.p and optim.lr vary (rate sweep, parallel
    coordinates) and the runs carry Monte-Carlo results. Grouping by every config key makes the
    summary table wider than the window."""
    curve = {"curve": [{"samples": t, "test_acc": 0.9 + t / 1000} for t in (1, 10, 50)]}
    for i, (p, lr) in enumerate([(0.0, 0.01), (0.0, 0.1), (0.5, 0.01), (0.5, 0.1)] * 2):
        # momentum and weight decay move with lr: names long enough to be numbered
        optim = {"lr": lr, "momentum": 0.9 + lr / 2, "weight_decay": lr / 100}
        make_run(tmp_path / "sweep" / str(i), p=p, seed=i // 4, test_acc=0.85 + p / 10 + i / 100,
                 extra_config={"optim": optim}, eval_block=curve)
    by = ["dropout.p", "optim.lr", "dropout.name", "dropout.p_input", "optim.momentum",
          "optim.weight_decay", "model.name", "model.hidden", "dataset.name", "trainer.epochs",
          "device"]
    return write_report([tmp_path / "sweep"], by=by)


def test_report_renders_every_figure_and_table_in_chromium(report, tmp_path):
    page = (report / "report.html").read_text()
    expected = re.findall(r'<figure id="([^"]+)"', page)
    assert len(expected) == 6  # overfitting, rate sweep, gap, grid, parallel coordinates, MC
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium(tmp_path, f"--window-size={WIDTH},2000", "--virtual-time-budget=10000",
                   "--dump-dom", probed.as_uri()).stdout
    found = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)
                       .replace("&quot;", '"'))
    figures = {f["name"]: f for f in found["figures"]}
    assert sorted(figures) == sorted(expected)
    # nothing wider than the window (wide tables scroll inside their own box); every image loads
    assert found["scrollWidth"] <= found["clientWidth"] == WIDTH, found
    assert found["images"] and all(width > 0 for width in found["images"])
    for name, figure in figures.items():
        assert figure["width"] > 300 and figure["height"] > 200, name  # decoded PNG
        assert 0.01 < figure["ink"] < 0.9, name  # drawn, not blank (nor all black)
        # shown as wide as the page allows: a key table beside it shrank it, text and all
        assert figure["box"][2] >= 0.95 * min(figure["width"], figure["room"]), (name, figure)
    assert any(f["keyed"] for f in figures.values())  # the long names are numbered here
    # tables: the summary (a header row + one row per (p, lr)) and the comparisons
    assert len(found["tables"]) >= 2 and found["tables"][0] == 1 + 4

    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--window-size={WIDTH},{found['height'] + 50}",
             f"--screenshot={shot}", probed.as_uri())
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    for name, figure in figures.items():
        left, top, width, height = (int(round(v)) for v in figure["box"])
        assert width > 300 and height > 150, name
        crop = pixels[top:top + height, left:left + width]
        drawn = (crop.min(axis=2) < INK).mean()
        # on screen the figure is scaled to the page width: its share of ink stays close
        assert drawn > 0.5 * figure["ink"], (name, drawn, figure["ink"])
    shutil.copy(shot, report / "screenshot.png")  # for a person to look at
