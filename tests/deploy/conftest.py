"""Deploy tests: the container image and the Kubernetes manifests.
They need no built binary; the container test builds the image itself."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HERE = pathlib.Path(__file__).resolve().parent

