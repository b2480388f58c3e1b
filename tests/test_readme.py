"""README.md's set-up commands and Python snippets stay true."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_snippets_run():
  snippets = re.findall(r"```python\n(.*?)```", README, re.S)
  assert snippets
  for code in snippets:
    exec(compile(code, "README.md", "exec"), {})


def test_setup_commands_and_ci_agree():
  block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
  main_job, tests = block.strip().splitlines()[:2]
  test_command = tests.split("&&")[-1].strip()
  ci = (ROOT / ".ci" / "run").read_text()
  assert test_command in ci
  module = re.search(r"python -m (launch\.\w+)", main_job).group(1)
  assert (ROOT / (module.replace(".", "/") + ".py")).exists()
  for config in re.findall(r"--config=(\S+?\.py)", main_job):
    assert (ROOT / config).exists()
