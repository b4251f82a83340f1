"""The README's tour runs as written (so the front page cannot rot)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_tour_runs(tmp_path, monkeypatch):
    text = README.read_text()
    match = re.search(r"<!-- tour -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its tour block"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(match.group(1), "README tour", "exec"), namespace)
    assert namespace["accuracy"] > 0.5
    assert namespace["probabilities"].shape == (5, 10)
    assert namespace["y"].shape == (2, 4, 4, 4)
    assert (tmp_path / "digits.cudacnn").exists()
