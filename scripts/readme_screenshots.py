"""Copy the browser test's screenshots into assets/screenshots/ for the README, smaller.

    python -m pytest tests/test_browser.py && python -m scripts.readme_screenshots

Each page is scaled to 1000 pixels wide and reduced to a 128-colour palette: readable, and a tenth of the size.
"""
from __future__ import annotations

from PIL import Image

from core.paths import ASSETS, REPO_ROOT

SOURCE = REPO_ROOT / "test-output" / "screenshots"
TARGET = ASSETS / "screenshots"
WIDTH = 1000


def main() -> None:
    shots = sorted(SOURCE.glob("*.png"))
    if not shots:
        raise SystemExit(f"error: no screenshots in {SOURCE}; run python -m pytest tests/test_browser.py first.")
    TARGET.mkdir(parents=True, exist_ok=True)
    for path in shots:
        image = Image.open(path).convert("RGB")
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(TARGET / path.name, optimize=True)
        print(f"{path.name}: {(TARGET / path.name).stat().st_size / 1024:.0f} KB", flush=True)


if __name__ == "__main__":
    main()
