"""Copy the browser test's screenshots that README.md shows into assets/screenshots/, smaller.

    python -m pytest tests/test_browser.py && python -m scripts.readme_screenshots

Each page is scaled to 1000 pixels wide and reduced to a 128-colour palette: readable, and a tenth of the size.
"""
from __future__ import annotations

import re

from PIL import Image

from core.paths import ASSETS, REPO_ROOT

SOURCE = REPO_ROOT / "test-output" / "screenshots"
TARGET = ASSETS / "screenshots"
WIDTH = 1000


def shown_in_readme() -> set[str]:
    """The screenshot file names README.md links to: the browser tests take more, of states worth checking."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"assets/screenshots/([\w.-]+\.png)", text))


def main() -> None:
    shots = sorted(path for path in SOURCE.glob("*.png") if path.name in shown_in_readme())
    if not shots:
        raise SystemExit(f"error: no screenshots the README shows in {SOURCE}; run python -m pytest "
                         "tests/test_browser.py first.")
    TARGET.mkdir(parents=True, exist_ok=True)
    for path in shots:
        image = Image.open(path).convert("RGB")
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(TARGET / path.name, optimize=True)
        print(f"{path.name}: {(TARGET / path.name).stat().st_size / 1024:.0f} KB", flush=True)


if __name__ == "__main__":
    main()
