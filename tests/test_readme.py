"""The README's API example runs as written (on the bundled digits, with few epochs)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"## API\n+```python\n(.*?)```", text, re.S).group(1)
    assert "psae.save" in block and "psae.load" in block
    code = (block.replace('"mnist", root="../shared/data"', '"digits"')
            .replace("random_state=0)", "random_state=0, epochs=4)"))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - our own README
    model = scope["model"]
    assert type(model).__name__ == "Pipeline" and (tmp_path / "model_dir").is_dir()
    assert scope["H"].shape[1] == 200
